"""Local peers that speak the real protocols: an FCM HTTP v1 server (with its OAuth token
endpoint), an SMS gateway, an SMTP server (aiosmtpd) and a Web Push endpoint.

Each records what it received and, like the real services it stands for, recognises a retried
message by its de-duplication key: `delivered` holds one entry per distinct key, `received`
every request. Failure modes are switched on per test (`down`, `fail_next`, `gone`...).
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeHttpProvider:
    """An HTTP/1.1 server on 127.0.0.1 with a random port, answering from `answer()`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # Behaviour switches -------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.received: list[Received] = []
            self.delivered: dict[str, Received] = {}
            self.down = False  # answer 503 to everything
            self.fail_next: list[int] = []  # statuses to answer before behaving normally
            self.retry_after: str | None = None
            self.on_receive: Callable[[Received], None] | None = None

    # Lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FakeHttpProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave without a delayed-ACK wait

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                   body)
                status, headers, payload = provider.handle(request)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # Protocol -----------------------------------------------------------------------------------
    def handle(self, request: Received) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.received.append(request)
            hook = self.on_receive
            if self.down:
                return self._unavailable()
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, self._retry_headers(), {"error": {"code": status}}
        answer = self.answer(request)  # accepted (and recorded) before anything else happens
        if hook is not None:
            hook(request)
        return answer

    def _retry_headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after else {}

    def _unavailable(self) -> tuple[int, dict[str, str], Any]:
        return 503, self._retry_headers(), {"error": {"code": 503, "status": "UNAVAILABLE"}}

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def deliver_once(self, key: str, request: Received) -> None:
        with self.lock:
            self.delivered.setdefault(key, request)


class FakeFcm(FakeHttpProvider):
    """FCM HTTP v1 `messages:send` plus a Google-style OAuth token endpoint (`/token`)."""

    SEND_PATH = "/v1/projects/phr-test/messages:send"

    def reset(self) -> None:
        super().reset()
        self.unregistered: set[str] = set()
        self.invalid: set[str] = set()
        self.assertions: list[str] = []
        self.bearer_tokens: list[str | None] = []

    @property
    def send_url(self) -> str:
        return self.url + self.SEND_PATH

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    def handle(self, request: Received) -> tuple[int, dict[str, str], Any]:
        if request.path == "/token":
            from urllib.parse import parse_qs

            form = parse_qs(request.body.decode())
            with self.lock:
                self.assertions.append(form["assertion"][0])
            return 200, {}, {"access_token": "fake-fcm-access-token", "expires_in": 3600,
                             "token_type": "Bearer"}
        return super().handle(request)

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        message = request.json()["message"]
        token = message["token"]
        with self.lock:
            self.bearer_tokens.append(request.headers.get("authorization"))
        if token in self.unregistered:
            return 404, {}, {"error": {"code": 404, "status": "NOT_FOUND", "details": [{
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": "UNREGISTERED"}]}}
        if token in self.invalid:
            return 400, {}, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "INVALID_ARGUMENT"},
                {"@type": "type.googleapis.com/google.rpc.BadRequest",
                 "fieldViolations": [{"field": "message.token",
                                      "description": "Invalid registration token"}]}]}}
        # A message with the collapse key of one already shown replaces it on the device.
        self.deliver_once(message["android"]["collapse_key"], request)
        return 200, {}, {"name": f"projects/phr-test/messages/{len(self.received)}"}


class FakeSmsGateway(FakeHttpProvider):
    """A JSON SMS gateway that honours Idempotency-Key."""

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        key = request.headers.get("idempotency-key", "")
        self.deliver_once(key, request)
        return 202, {}, {"id": "sms-" + key[:12]}


class FakePushService(FakeHttpProvider):
    """A Web Push service: POST /push/<subscription>; `gone` subscriptions answer 410."""

    def reset(self) -> None:
        super().reset()
        self.gone: set[str] = set()

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        name = request.path.rsplit("/", 1)[-1]
        if name in self.gone:
            return 410, {}, None
        # RFC 8030 §5.4: a message with the Topic of one still held replaces it.
        self.deliver_once(f"{name}:{request.headers.get('topic', '')}", request)
        return 201, {"Location": f"/messages/{len(self.received)}"}, None


@dataclass
class ReceivedMail:
    mail_from: str
    recipients: list[str]
    message: email.message.EmailMessage


@dataclass
class FakeSmtp:
    """aiosmtpd on 127.0.0.1; dedups by Message-ID like a mailbox that has the message."""

    received: list[ReceivedMail] = field(default_factory=list)
    delivered: dict[str, ReceivedMail] = field(default_factory=dict)
    reject_with: int | None = None
    port: int = 0
    _controller: Any = None

    def reset(self) -> None:
        self.received = []
        self.delivered = {}
        self.reject_with = None

    def start(self) -> FakeSmtp:
        from aiosmtpd.controller import Controller

        fake = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any,  # noqa: N802
                                  address: str, rcpt_options: Any) -> str:
                if fake.reject_with is not None:
                    return f"{fake.reject_with} 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)
                fake.received.append(mail)
                fake.delivered.setdefault(str(message["Message-ID"]).strip(), mail)
                return "250 Message accepted for delivery"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Providers:
    fcm: FakeFcm
    sms: FakeSmsGateway
    push: FakePushService
    smtp: FakeSmtp

    def reset(self) -> None:
        for provider in (self.fcm, self.sms, self.push, self.smtp):
            provider.reset()

    def stop(self) -> None:
        for provider in (self.fcm, self.sms, self.push, self.smtp):
            provider.stop()

"""Push to the super-app through the FCM HTTP v1 API (a small client on requests).

firebase-admin can only be pointed at a fake through a private attribute; the HTTP v1 API is one
POST, so we speak it directly. Authorization is an OAuth 2.0 access token obtained with a service
account's JWT bearer assertion (RFC 7523) and cached until shortly before it expires.

FCM has no idempotency key on send. A retry after a lost answer is made harmless on the device:
`android.notification.tag` and `apns-collapse-id` replace a shown notification with the same key,
`android.collapse_key` collapses undelivered copies, and `data.dedup_key` lets the app drop a
duplicate it already has.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from notifications.channels.base import (
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
    http_session,
    retry_after_seconds,
)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_TOKEN_MARGIN_SECONDS = 120


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FcmCredentials:
    """A service account (its JSON key file) and the access token cached from it."""

    client_email: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    private_key_id: str
    token_uri: str
    _token: str | None = field(default=None, repr=False)
    _expires_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_file(cls, path: str) -> FcmCredentials:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the service account key must be RSA")
        return cls(
            client_email=info["client_email"], private_key=key,
            private_key_id=info.get("private_key_id", ""),
            token_uri=info.get("token_uri", "https://oauth2.googleapis.com/token"),
        )

    def assertion(self, now: float) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.private_key_id}
        claims = {
            "iss": self.client_email, "scope": FCM_SCOPE, "aud": self.token_uri,
            "iat": int(now), "exp": int(now) + 3600,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.private_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return signing_input + "." + _b64url(signature)

    def access_token(self, http: requests.Session, *, timeout: float) -> str:
        """A valid access token, fetched again when the cached one is about to expire."""
        with self._lock:
            now = time.time()
            if self._token is not None and now < self._expires_at - _TOKEN_MARGIN_SECONDS:
                return self._token
            response = http.post(
                self.token_uri,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": self.assertion(now),
                },
                timeout=timeout,
            )
            response.raise_for_status()
            body = response.json()
            self._token = str(body["access_token"])
            self._expires_at = now + float(body.get("expires_in", 3600))
            return self._token

    def forget_token(self) -> None:
        with self._lock:
            self._token = None


def collapse_id(dedup_key: str) -> str:
    """APNs allows 64 bytes; our keys are 64 hex characters already, but stay safe."""
    return dedup_key[:64]


def build_message(message: OutboundMessage) -> dict[str, Any]:
    """The FCM v1 `message` object: generic texts, an opaque key, nothing personal."""
    topic = _b64url(hashlib.sha256(message.dedup_key.encode()).digest())[:32]
    return {
        "token": message.address,
        "notification": {"title": message.title, "body": message.body},
        "data": {
            "type": "phr.notification",
            "notification_id": str(message.notification_id),
            "dedup_key": message.dedup_key,
        },
        "android": {
            "collapse_key": message.dedup_key,
            "priority": "HIGH" if message.urgent else "NORMAL",
            "notification": {"tag": message.dedup_key},
        },
        "apns": {
            "headers": {
                "apns-collapse-id": collapse_id(message.dedup_key),
                "apns-priority": "10" if message.urgent else "5",
            },
        },
        "webpush": {"headers": {"Topic": topic, "Urgency": "high" if message.urgent else "normal"}},
    }


def _fcm_error(response: requests.Response) -> tuple[str, list[dict[str, Any]]]:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return "", []
    details = error.get("details") or []
    codes = [d.get("errorCode") for d in details if isinstance(d, dict) and d.get("errorCode")]
    status = codes[0] if codes else str(error.get("status", ""))
    return status, [d for d in details if isinstance(d, dict)]


def classify_fcm_response(response: requests.Response) -> SendResult:
    """Map an FCM v1 answer to an outcome (the error reference of the HTTP v1 API)."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            name = response.json().get("name")
        except ValueError:
            name = None
        return SendResult.sent(str(name) if name else None)
    code, details = _fcm_error(response)
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 404 or code == "UNREGISTERED":
        return SendResult(Outcome.GONE, "unregistered")
    if code == "SENDER_ID_MISMATCH":
        return SendResult(Outcome.GONE, "sender-id-mismatch")
    if status == 400:
        token_violation = any(
            violation.get("field") == "message.token"
            for detail in details
            for violation in detail.get("fieldViolations", []) or []
            if isinstance(violation, dict)
        )
        if token_violation:
            return SendResult(Outcome.GONE, "invalid-token")
        return SendResult(Outcome.FAILED, "invalid-argument")
    outcome = classify_http_status(status)
    return SendResult(outcome, f"http-{status}", retry_after=retry_after)


class FcmSender:
    """Sends to FCM over one HTTP session for the length of a batch."""

    def __init__(
        self, *, url: str, credentials: FcmCredentials | None, timeout: float
    ) -> None:
        self._url = url
        self._credentials = credentials
        self._timeout = timeout
        self._http = http_session()

    def send(self, message: OutboundMessage) -> SendResult:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self._credentials is not None:
            try:
                token = self._credentials.access_token(self._http, timeout=self._timeout)
            except (requests.RequestException, KeyError, ValueError):
                return SendResult(Outcome.RETRY, "auth-token")
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.post(
                self._url, data=json.dumps({"message": build_message(message)}),
                headers=headers, timeout=self._timeout,
            )
        except requests.Timeout:
            return SendResult(Outcome.RETRY, "timeout")
        except requests.RequestException:
            return SendResult(Outcome.RETRY, "unreachable")
        if response.status_code == 401 and self._credentials is not None:
            self._credentials.forget_token()
        return classify_fcm_response(response)

    def close(self) -> None:
        self._http.close()

"""Fake providers that accept a message at once and answer only 30 s later (or when the test
releases them): a provider that hangs after taking the message, the case where a client that
gives up may send a second copy."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.notifications.fakes import FakeHttpProvider, FakePushService, FakeSmsGateway, Received

ANSWER_AFTER_SECONDS = 30.0


class _Holding(FakeHttpProvider):
    """Answers as its base class does, but (while `slow`) only after the release or 30 s."""

    def reset(self) -> None:
        super().reset()
        self.slow = False
        self.released = threading.Event()
        self.arrivals: list[float] = []  # time.monotonic() of each message request

    def start(self) -> _Holding:
        super().start()
        # A client that gave up has closed its end: answering it late fails, as it should.
        self._server.handle_error = lambda *_: None  # type: ignore[union-attr, method-assign]
        return self

    def release(self) -> None:
        """Answer every held request now (and stop holding new ones)."""
        with self.lock:
            self.slow = False
        self.released.set()

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.arrivals.append(time.monotonic())
            slow = self.slow
        answer = super().answer(request)  # accepted (and delivered) before the answer leaves
        if slow:
            self.released.wait(ANSWER_AFTER_SECONDS)
        return answer


class SlowSmsGateway(_Holding, FakeSmsGateway):
    """The SMS gateway (Idempotency-Key), slow when told."""


class SlowPushService(_Holding, FakePushService):
    """A Web Push service (Topic), slow when told."""

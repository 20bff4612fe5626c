"""The one interface every delivery channel implements, and what a send can come back with."""

from __future__ import annotations

import urllib.request
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import requests


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: try again later (provider down, throttled, timeout)
    FAILED = "failed"  # permanent for this message: retrying cannot help
    GONE = "gone"  # the address no longer exists (device unregistered): forget it


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    # A short machine code for the outbox row ("http-503", "timeout", "unregistered"...):
    # never the provider's text, which may echo the address.
    code: str = ""
    provider_id: str | None = None
    retry_after: float | None = None

    @classmethod
    def sent(cls, provider_id: str | None = None) -> SendResult:
        return cls(Outcome.SENT, "", provider_id)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a channel needs to send one delivery; the texts are generic by construction."""

    delivery_id: uuid.UUID
    notification_id: uuid.UUID
    dedup_key: str  # stable across retries: idempotency key / collapse key / Message-ID
    channel: str
    platform: str | None
    address: str = field(repr=False)  # device token, subscription JSON, phone or e-mail
    language: str
    urgent: bool
    title: str
    body: str
    link: str


class Sender(Protocol):
    """Sends messages of one channel; holds connections for the length of one batch."""

    def send(self, message: OutboundMessage) -> SendResult:
        """Send one message and classify what happened; never raises for provider errors."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (HTTP dates are treated as absent)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def classify_http_status(status: int) -> Outcome:
    """The usual meaning of an HTTP status for a send request."""
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (408, 425, 429) or status >= 500 or status in (401, 403):
        # 401/403: our credentials expired or are being rotated: the message itself is fine.
        return Outcome.RETRY
    return Outcome.FAILED


def http_session() -> requests.Session:
    """A keep-alive HTTP session for one batch of sends."""
    session = requests.Session()
    # requests re-reads the proxy environment on every request (a few hundred microseconds
    # each); without any proxy configured there is nothing to find, so skip the lookup.
    if not urllib.request.getproxies():
        session.trust_env = False
    return session

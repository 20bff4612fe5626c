"""Push to the citizen portal with Web Push (RFC 8030/8291/8292) through pywebpush and VAPID.

The RFC 8030 `Topic` header, derived from the de-duplication key, makes the push service replace
an undelivered copy of a retried message; the payload's `tag` lets the service worker replace a
shown one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from notifications.channels.base import (
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
    http_session,
    retry_after_seconds,
)
from notifications.channels.vapid import InvalidSubscription, parse_subscription, topic_for

TTL_SECONDS = 7 * 24 * 3600  # a reminder is still worth showing when the browser wakes up


def payload_for(message: OutboundMessage) -> bytes:
    """What the service worker receives (encrypted end to end): generic texts and ids only."""
    return json.dumps({
        "title": message.title, "body": message.body, "url": message.link,
        "notification_id": str(message.notification_id), "tag": message.dedup_key,
    }, ensure_ascii=False).encode()


class WebPushSender:
    """Sends Web Push messages over one HTTP session for the length of a batch."""

    def __init__(
        self,
        *,
        private_key: ec.EllipticCurvePrivateKey,
        subject: str,
        allowed_hosts: Sequence[str],
        timeout: float,
    ) -> None:
        self._vapid = Vapid(private_key=private_key)
        self._subject = subject
        self._allowed = tuple(allowed_hosts)
        self._timeout = timeout
        self._http = http_session()

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            subscription = parse_subscription(message.address, allowed_hosts=self._allowed)
        except InvalidSubscription:
            return SendResult(Outcome.GONE, "invalid-subscription")
        parts = urlsplit(subscription["endpoint"])
        claims = {
            "sub": self._subject,
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + 12 * 3600,
        }
        headers = dict(self._vapid.sign(claims))
        headers["Topic"] = topic_for(message.dedup_key)
        headers["Urgency"] = "high" if message.urgent else "normal"
        try:
            response = WebPusher(subscription, requests_session=self._http).send(
                payload_for(message), headers, ttl=TTL_SECONDS, timeout=self._timeout,
            )
        except requests.Timeout:
            return SendResult(Outcome.RETRY, "timeout")
        except requests.RequestException:
            return SendResult(Outcome.RETRY, "unreachable")
        except WebPushException:
            return SendResult(Outcome.GONE, "invalid-subscription")
        return classify_webpush_response(response)

    def close(self) -> None:
        self._http.close()


def classify_webpush_response(response: requests.Response) -> SendResult:
    """RFC 8030: 201 created; 404/410 the subscription is gone; 413/400 our message is wrong."""
    status = response.status_code
    if 200 <= status < 300:
        return SendResult.sent(response.headers.get("Location"))
    if status in (404, 410):
        return SendResult(Outcome.GONE, f"http-{status}")
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 403:
        # The subscription was made with another VAPID key: it can never accept ours.
        return SendResult(Outcome.GONE, "http-403")
    return SendResult(classify_http_status(status), f"http-{status}", retry_after=retry_after)

"""SMS through an HTTP gateway: one JSON POST per message with an Idempotency-Key.

Request: ``POST SMS_GATEWAY_URL`` with ``{"to": "+84...", "text": "...", "reference": key}``,
headers ``Idempotency-Key: key`` and, when configured, ``Authorization: Bearer SMS_GATEWAY_TOKEN``.
A 2xx answer (optionally ``{"id": ...}``) means accepted; gateways that honour the key (most
Vietnamese brand-name SMS APIs take a client message id) send a retried message once.
"""

from __future__ import annotations

import requests

from notifications.channels.base import (
    OutboundMessage,
    Outcome,
    SendResult,
    classify_http_status,
    http_session,
    retry_after_seconds,
)


class SmsGatewaySender:
    def __init__(self, *, url: str, token: str, timeout: float) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout
        self._http = http_session()

    def send(self, message: OutboundMessage) -> SendResult:
        headers = {"Idempotency-Key": message.dedup_key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = {"to": message.address, "text": message.body, "reference": message.dedup_key}
        try:
            response = self._http.post(
                self._url, json=body, headers=headers, timeout=self._timeout
            )
        except requests.Timeout:
            return SendResult(Outcome.RETRY, "timeout")
        except requests.RequestException:
            return SendResult(Outcome.RETRY, "unreachable")
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
                provider_id = answer.get("id") if isinstance(answer, dict) else None
            except ValueError:
                provider_id = None
            return SendResult.sent(str(provider_id) if provider_id else None)
        return SendResult(
            classify_http_status(status), f"http-{status}",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )

    def close(self) -> None:
        self._http.close()

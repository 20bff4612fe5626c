"""Development stand-in for a channel without a provider: writes one log line, reports sent.

Only used when APP_ENV is not production (DESIGN §8: "local fake channels that write to the
inbox and a log"). The line carries ids only; the address stays out of logs.
"""

from __future__ import annotations

import logging

from notifications.channels.base import OutboundMessage, SendResult

log = logging.getLogger("phr.notifications.channel")


class LogSender:
    def __init__(self, name: str) -> None:
        self._name = name

    def send(self, message: OutboundMessage) -> SendResult:
        log.info(
            "notification delivered to the development log channel",
            extra={"channel": self._name, "delivery_id": str(message.delivery_id),
                   "notification_id": str(message.notification_id)},
        )
        return SendResult.sent(f"log:{message.delivery_id}")

    def close(self) -> None:
        return None

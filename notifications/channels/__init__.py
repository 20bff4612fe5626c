"""Delivery channels behind one interface, chosen by configuration.

A route is a channel name plus, for push, the device platform: ``push:fcm``, ``push:webpush``,
``sms``, ``email``. Each has a real implementation when its provider is configured, a log
stand-in in development when it is not, and is simply absent in production when it is not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec

from notifications.channels.base import (
    OutboundMessage,
    Outcome,
    Sender,
    SendResult,
)
from notifications.channels.fcm import FcmCredentials
from notifications.settings import NotificationSettings
from notifications.triggers import EMAIL, PLATFORM_FCM, PLATFORM_WEBPUSH, PUSH, SMS

__all__ = [
    "ChannelSet",
    "Senders",
    "OutboundMessage",
    "Outcome",
    "SendResult",
    "Sender",
    "route_of",
]

log = logging.getLogger("phr.notifications")

ROUTE_FCM = f"{PUSH}:{PLATFORM_FCM}"
ROUTE_WEBPUSH = f"{PUSH}:{PLATFORM_WEBPUSH}"
ROUTES = (ROUTE_FCM, ROUTE_WEBPUSH, SMS, EMAIL)


def route_of(channel: str, platform: str | None) -> str:
    return f"{channel}:{platform}" if channel == PUSH else channel


class ChannelSet:
    """The configured channels of one app (long-lived: credentials, keys, factories)."""

    def __init__(self, settings: NotificationSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._fcm_credentials: FcmCredentials | None = None
        self._vapid_key: ec.EllipticCurvePrivateKey | None = None
        self._vapid_failed = False

    # What exists ------------------------------------------------------------------------------
    def real(self, route: str) -> bool:
        """Whether a real provider is configured for the route."""
        s = self._settings
        return bool({
            ROUTE_FCM: s.fcm_url,
            ROUTE_WEBPUSH: s.vapid_private_key_file,
            SMS: s.sms_url,
            EMAIL: s.smtp_host,
        }[route])

    def available(self, route: str) -> bool:
        """Whether messages for the route can be sent (really, or to the development log)."""
        return self.real(route) or not self._settings.production

    def available_routes(self) -> frozenset[str]:
        return frozenset(route for route in ROUTES if self.available(route))

    # Long-lived credentials -------------------------------------------------------------------
    def fcm_credentials(self) -> FcmCredentials | None:
        path = self._settings.fcm_credentials_file
        if not path:
            return None
        with self._lock:
            if self._fcm_credentials is None:
                self._fcm_credentials = FcmCredentials.from_file(path)
            return self._fcm_credentials

    def vapid_private_key(self) -> ec.EllipticCurvePrivateKey | None:
        """The VAPID key (generated in development on first use); None when unavailable."""
        if not self._settings.vapid_private_key_file:
            return None
        with self._lock:
            if self._vapid_key is None and not self._vapid_failed:
                from notifications.channels.vapid import load_or_create_vapid_key

                try:
                    self._vapid_key = load_or_create_vapid_key(
                        self._settings.vapid_private_key_file,
                        production=self._settings.production,
                    )
                except (OSError, ValueError) as exc:
                    self._vapid_failed = True
                    log.error("Web Push disabled: VAPID key unusable (%s)", type(exc).__name__)
            return self._vapid_key

    # Senders ----------------------------------------------------------------------------------
    def factory(self, route: str) -> Callable[[], Sender] | None:
        s = self._settings
        if not self.real(route):
            if s.production:
                return None
            from notifications.channels.log import LogSender

            return lambda: LogSender(route)
        if route == ROUTE_FCM:
            from notifications.channels.fcm import FcmSender

            credentials = self.fcm_credentials()
            return lambda: FcmSender(url=s.fcm_url, credentials=credentials,
                                     timeout=s.http_timeout)
        if route == ROUTE_WEBPUSH:
            from notifications.channels.webpush import WebPushSender

            key = self.vapid_private_key()
            if key is None:
                return None
            return lambda: WebPushSender(private_key=key, subject=s.vapid_subject,
                                         allowed_hosts=s.webpush_endpoint_hosts,
                                         timeout=s.http_timeout)
        if route == SMS:
            from notifications.channels.sms import SmsGatewaySender

            return lambda: SmsGatewaySender(url=s.sms_url, token=s.sms_token,
                                            timeout=s.http_timeout)
        from notifications.channels.email import SmtpSender

        return lambda: SmtpSender(
            host=s.smtp_host, port=s.smtp_port, sender=s.smtp_from, starttls=s.smtp_starttls,
            username=s.smtp_username, password=s.smtp_password, timeout=s.http_timeout,
        )


class Senders:
    """Senders for one batch on one thread, created on first use; ``close()`` releases them."""

    def __init__(self, channels: ChannelSet) -> None:
        self._channels = channels
        self._open: dict[str, Sender | None] = {}

    def get(self, route: str) -> Sender | None:
        if route not in self._open:
            factory = self._channels.factory(route)
            self._open[route] = factory() if factory is not None else None
        return self._open[route]

    def close(self) -> None:
        for sender in self._open.values():
            if sender is not None:
                try:
                    sender.close()
                except Exception:  # noqa: BLE001 - closing must not mask the batch's result
                    log.warning("closing a channel failed", exc_info=True)
        self._open.clear()

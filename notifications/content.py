"""What push, SMS and e-mail say: the same generic words for every notification.

Nothing here depends on the notification's content, by design: push payloads and SMS travel
through third parties and show on lock screens, so they carry no health details, names or ids
(DESIGN §6). The app fetches the details over the authenticated API.
"""

from __future__ import annotations

from core.i18n import translate
from notifications.triggers import EMAIL, PUSH, SMS


def channel_texts(channel: str, *, language: str, urgent: bool, link: str) -> tuple[str, str]:
    """(title, body) for one channel in one language."""
    suffix = ".urgent" if urgent else ""
    if channel == PUSH:
        return (
            translate("notification.push.title", language),
            translate("notification.push.body" + suffix, language),
        )
    if channel == SMS:
        return "", translate("notification.sms.body" + suffix, language)
    if channel == EMAIL:
        return (
            translate("notification.email.subject" + suffix, language),
            translate("notification.email.body", language, link=link or "-"),
        )
    raise ValueError(f"unknown channel {channel!r}")

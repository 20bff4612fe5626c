"""Account notices: the SMS with a one-time code, and the warnings that an account was opened
or its password reset (auth/account_codes.py emits the events; triggers.ACCOUNT_NOTICES).

A code is the one secret an SMS may carry, and it rests nowhere: the notification keeps the
code's id, and the digits are derived again when the SMS is written (at delivery), so neither
the outbox nor the inbox holds them, and a code that ended before its SMS left (used,
superseded, burned, expired) is not sent at all. The texts name no one and say nothing of
health: a code, how long it lasts, "do not share it", and whom to call if it was not you.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from auth import account_codes
from core.events import DomainEvent, EventBus
from core.i18n import register_messages, translate
from core.vault.errors import VaultError
from notifications import triggers
from notifications.content import gsm7
from notifications.models import Notification
from notifications.outbox import NotificationRequest, enqueue
from notifications.recipients import Recipient

_CODE_TRIGGERS = {
    account_codes.ACTIVATION: triggers.ACTIVATION_CODE,
    account_codes.PASSWORD_RESET: triggers.PASSWORD_RESET_CODE,
}


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _tell(session: Session, event: DomainEvent, trigger: str, natural_key: str,
          params: dict[str, Any]) -> None:
    # The person alone: a code or a warning about their account is nobody else's business
    # (not a guardian's, whose notices are about the record).
    enqueue(session, [NotificationRequest(
        trigger=trigger, subject_citizen_id=event.citizen_id,
        recipient=Recipient.citizen(event.citizen_id), natural_key=natural_key, params=params,
    )], now=None)


def on_code_issued(session: Session, event: DomainEvent) -> None:
    code_id = _uuid(event.data.get("code_id"))
    trigger = _CODE_TRIGGERS.get(str(event.data.get("purpose")))
    if code_id is None or trigger is None:
        return
    _tell(session, event, trigger, f"code:{code_id}",
          {"code_id": str(code_id), "purpose": str(event.data["purpose"])})


def on_account_activated(session: Session, event: DomainEvent) -> None:
    account_id = _uuid(event.data.get("account_id"))
    if account_id is not None:
        _tell(session, event, triggers.ACCOUNT_ACTIVATED, f"activated:{account_id}", {})


def on_password_reset(session: Session, event: DomainEvent) -> None:
    code_id = _uuid(event.data.get("code_id"))
    if code_id is not None:
        _tell(session, event, triggers.PASSWORD_RESET, f"password-reset:{code_id}", {})


HANDLERS: dict[str, Callable[[Session, DomainEvent], None]] = {
    account_codes.CODE_ISSUED: on_code_issued,
    account_codes.ACCOUNT_ACTIVATED: on_account_activated,
    account_codes.PASSWORD_RESET_DONE: on_password_reset,
}


def install(bus: EventBus) -> None:
    """Subscribe the handlers and register the texts (notifications.init_app)."""
    register_messages(MESSAGES)
    for name, handler in HANDLERS.items():
        bus.subscribe(name, handler)


# The SMS, written at delivery ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountSms:
    """What an account notice's SMS says; `code` for a code notice (None: it ended)."""

    trigger: str
    code: str | None = None
    ended: bool = False

    def text(self, language: str) -> str:
        key = f"notification.sms.{self.trigger}"
        if self.code is None:
            return gsm7(translate(key, language))
        config = current_app.config
        grouped = f"{self.code[:4]} {self.code[4:]}"  # read aloud and typed in two halves
        return gsm7(translate(
            key, language, code=grouped,
            hours=int(config.get("ACCOUNT_ACTIVATION_HOURS", 72)),
            minutes=int(config.get("PASSWORD_RESET_MINUTES", 15)),
        ))


def account_sms(session: Session, notifications: Sequence[Notification]
                ) -> dict[uuid.UUID, AccountSms]:
    """The SMS of these notifications that are account notices, by notification id."""
    found: dict[uuid.UUID, AccountSms] = {}
    for notification in notifications:
        if notification.trigger not in triggers.ACCOUNT_NOTICES:
            continue
        if notification.trigger not in _CODE_TRIGGERS.values():
            found[notification.id] = AccountSms(notification.trigger)
            continue
        try:
            params = notification.params
            code_id = _uuid(params.get("code_id"))
            purpose = str(params.get("purpose"))
        except (VaultError, AttributeError):
            code_id, purpose = None, ""
        row = account_codes.live_code(session, code_id=code_id) if code_id else None
        if row is None or row.purpose != purpose or row.citizen_id != \
                notification.subject_citizen_id:
            found[notification.id] = AccountSms(notification.trigger, ended=True)
            continue
        found[notification.id] = AccountSms(
            notification.trigger, code=account_codes.derive_code(row.id, row.citizen_id,
                                                                 row.purpose))
    return found


_DO_NOT_SHARE_VI = "KHONG chia se ma nay voi bat ky ai, ke ca nhan vien y te."
_DO_NOT_SHARE_EN = "Do NOT share this code with anyone, health staff included."
_NOT_YOU_VI = "Neu khong phai ban, hay lien he ngay tram y te xa cua ban."
_NOT_YOU_EN = "If this was not you, contact your commune health station at once."

MESSAGES = {
    # SMS (GSM-7 after gsm7(); a code, its lifetime and a warning, nothing else).
    "notification.sms.account-activation-code": {
        "vi": "So suc khoe dien tu: Ma kich hoat tai khoan cua ban la {code}, hieu luc {hours} "
              "gio. " + _DO_NOT_SHARE_VI,
        "en": "Health record: Your account activation code is {code}, valid for {hours} "
              "hours. " + _DO_NOT_SHARE_EN,
    },
    "notification.sms.password-reset-code": {
        "vi": "So suc khoe dien tu: Ma dat lai mat khau cua ban la {code}, hieu luc {minutes} "
              "phut. " + _DO_NOT_SHARE_VI + " " + _NOT_YOU_VI,
        "en": "Health record: Your password reset code is {code}, valid for {minutes} "
              "minutes. " + _DO_NOT_SHARE_EN + " " + _NOT_YOU_EN,
    },
    "notification.sms.account-activated": {
        "vi": "So suc khoe dien tu: Tai khoan cua ban vua duoc kich hoat. " + _NOT_YOU_VI,
        "en": "Health record: Your account was just activated. " + _NOT_YOU_EN,
    },
    "notification.sms.password-reset": {
        "vi": "So suc khoe dien tu: Mat khau tai khoan cua ban vua duoc doi va moi thiet bi da "
              "bi dang xuat. " + _NOT_YOU_VI,
        "en": "Health record: Your account password was just changed and every device was "
              "signed out. " + _NOT_YOU_EN,
    },
    # The inbox: what happened, never the code.
    "notification.account-activation-code.title": {
        "vi": "Mã kích hoạt tài khoản", "en": "Account activation code"},
    "notification.account-activation-code.body.self": {
        "vi": "Trạm y tế đã cấp mã kích hoạt tài khoản cho bạn. Nếu bạn không nhận ra việc "
              "này, hãy liên hệ trạm y tế xã của bạn.",
        "en": "Your health station issued an account activation code for you. If you do not "
              "recognise this, contact your commune health station."},
    "notification.password-reset-code.title": {
        "vi": "Mã đặt lại mật khẩu", "en": "Password reset code"},
    "notification.password-reset-code.body.self": {
        "vi": "Một mã đặt lại mật khẩu đã được gửi tới số điện thoại của bạn. Nếu bạn không "
              "yêu cầu, hãy bỏ qua và không chia sẻ mã với ai.",
        "en": "A password reset code was sent to your phone. If you did not ask for it, "
              "ignore it and share the code with no one."},
    "notification.account-activated.title": {
        "vi": "Tài khoản đã kích hoạt", "en": "Account activated"},
    "notification.account-activated.body.self": {
        "vi": "Tài khoản của bạn đã được kích hoạt. Nếu không phải bạn, hãy liên hệ ngay trạm "
              "y tế xã của bạn.",
        "en": "Your account was activated. If this was not you, contact your commune health "
              "station at once."},
    "notification.password-reset.title": {
        "vi": "Mật khẩu đã được đổi", "en": "Password changed"},
    "notification.password-reset.body.self": {
        "vi": "Mật khẩu tài khoản của bạn đã được đổi và mọi thiết bị đã bị đăng xuất. Nếu "
              "không phải bạn, hãy liên hệ ngay trạm y tế xã của bạn.",
        "en": "Your account password was changed and every device was signed out. If this was "
              "not you, contact your commune health station at once."},
}
# Told only to the person themselves; the inbox's renderer asks for the "other" form of every
# trigger's body all the same, so it exists (and says the same).
MESSAGES.update({
    key.replace(".body.self", ".body.other"): texts
    for key, texts in list(MESSAGES.items()) if key.endswith(".body.self")
})

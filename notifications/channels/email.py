"""E-mail over SMTP (smtplib): one connection per batch, Message-ID derived from the dedup key.

The Message-ID lets a relay or mailbox that has already accepted a message recognise a retry.
Replies 5xx are permanent; 4xx, disconnects and timeouts are retried.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from notifications.channels.base import OutboundMessage, Outcome, SendResult


def message_id(dedup_key: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "localhost"
    return f"<{dedup_key}@{domain}>"


def build_email(message: OutboundMessage, *, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.address
    email["Subject"] = message.title
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = message_id(message.dedup_key, sender)
    email["Auto-Submitted"] = "auto-generated"
    email["Content-Language"] = message.language
    email.set_content(message.body)
    return email


class SmtpSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        starttls: bool,
        username: str,
        password: str,
        timeout: float,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._username = username
        self._password = password
        self._timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            try:
                if self._starttls:
                    smtp.starttls()
                if self._username:
                    smtp.login(self._username, self._password)
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def send(self, message: OutboundMessage) -> SendResult:
        email = build_email(message, sender=self._sender)
        try:
            self._connection().send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = bool(codes) and all(code >= 500 for code in codes)
            return SendResult(
                Outcome.FAILED if permanent else Outcome.RETRY,
                f"smtp-{codes[0] if codes else 'refused'}",
            )
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                return SendResult(Outcome.FAILED, f"smtp-{exc.smtp_code}")
            self._drop()
            return SendResult(Outcome.RETRY, f"smtp-{exc.smtp_code}")
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            code = "timeout" if isinstance(exc, TimeoutError) else "unreachable"
            return SendResult(Outcome.RETRY, code)
        return SendResult.sent(email["Message-ID"])

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self._smtp.close()
                self._smtp = None

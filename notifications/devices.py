"""Push devices of a person: register (idempotent per token), list, remove."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.encryption import compute_blind_index
from core.errors import Message, NotFound, ValidationFailed
from notifications.channels.vapid import InvalidSubscription, parse_subscription
from notifications.models import CANCELLED, PENDING, Delivery, Device
from notifications.recipients import Recipient
from notifications.triggers import PLATFORM_FCM, PLATFORM_WEBPUSH

# FCM registration tokens: URL-safe characters plus ':' (in practice ~160 characters).
_FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-.]{20,4096}$")
_BLIND_INDEX_FIELD = "notification_device_token"


def canonical_token(
    platform: str, token: str, *, webpush_hosts: tuple[str, ...]
) -> tuple[str, str]:
    """(what to store, what identifies the device); 422 when the token is not plausible."""
    if platform == PLATFORM_FCM:
        value = token.strip()
        if not _FCM_TOKEN.fullmatch(value):
            raise ValidationFailed(errors={"token": [Message("notification.invalid-token")]})
        return value, value
    if platform == PLATFORM_WEBPUSH:
        try:
            subscription = parse_subscription(token, allowed_hosts=webpush_hosts)
        except InvalidSubscription:
            raise ValidationFailed(
                errors={"token": [Message("notification.invalid-subscription")]}
            ) from None
        return json.dumps(subscription, separators=(",", ":")), subscription["endpoint"]
    raise ValidationFailed(errors={"platform": [Message("notification.invalid-platform")]})


def register_device(
    session: Session,
    owner: Recipient,
    *,
    platform: str,
    token: str,
    webpush_hosts: tuple[str, ...],
    now: dt.datetime,
) -> tuple[Device, bool]:
    """Register a device for ``owner``; (device, created). A token another person registered
    moves to this person (one phone, a new login): the previous owner stops receiving on it."""
    stored, identity = canonical_token(platform, token, webpush_hosts=webpush_hosts)
    token_hash = compute_blind_index(_BLIND_INDEX_FIELD, f"{platform}:{identity}")
    existing = session.scalars(select(Device).where(Device.token_hash == token_hash)).one_or_none()
    if existing is not None:
        if (existing.owner_kind, existing.owner_id) == (owner.kind, owner.id):
            existing.last_seen_at = now
            if existing.token != stored:  # a browser renewed its subscription keys
                existing.token = stored
            return existing, False
        _drop(session, existing, now)
    device = Device(
        id=uuid.uuid4(), owner_kind=owner.kind, owner_id=owner.id, platform=platform,
        token_hash=token_hash, created_at=now, last_seen_at=now,
    )
    session.add(device)
    device.token = stored  # encrypted in this session, under the owner's key
    session.flush()
    return device, True


def list_devices(session: Session, owner: Recipient) -> list[Device]:
    return list(session.scalars(
        select(Device)
        .where(Device.owner_kind == owner.kind, Device.owner_id == owner.id)
        .order_by(Device.created_at, Device.id)
    ))


def remove_device(
    session: Session, owner: Recipient, device_id: uuid.UUID, *, now: dt.datetime
) -> None:
    """Remove one of the owner's devices (404 for anyone else's: existence does not leak)."""
    device = session.get(Device, device_id)
    if device is None or (device.owner_kind, device.owner_id) != (owner.kind, owner.id):
        raise NotFound()
    _drop(session, device, now)


def _drop(session: Session, device: Device, now: dt.datetime) -> None:
    table = Delivery.__table__
    session.execute(
        update(table)
        .where(table.c.device_id == device.id, table.c.status == PENDING)
        .values(status=CANCELLED, last_error="device-removed", updated_at=now,
                lease_until=None, lease_token=None)
    )
    session.delete(device)
    session.flush()

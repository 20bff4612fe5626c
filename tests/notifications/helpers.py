"""Small helpers shared by the notification tests (real services, committed data)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select


def add_device(app: Any, owner_id: uuid.UUID, *, platform: str, token: str,
               kind: str = "citizen") -> uuid.UUID:
    from core.db import db
    from notifications.devices import register_device
    from notifications.recipients import Recipient
    from notifications.runtime import runtime

    with app.app_context():
        state = runtime()
        device, _ = register_device(
            db.session, Recipient(kind, owner_id), platform=platform, token=token,
            webpush_hosts=state.settings.webpush_endpoint_hosts, now=state.settings.clock(),
        )
        db.session.commit()
        return device.id


def notify(
    app: Any,
    *,
    subject: uuid.UUID,
    recipient: uuid.UUID | None = None,
    trigger: str = "entry-created",
    key: str | None = None,
    params: dict[str, Any] | None = None,
    recipient_kind: str = "citizen",
) -> list[uuid.UUID]:
    """Enqueue one notification in its own committed transaction."""
    from core.db import db
    from notifications.outbox import NotificationRequest, enqueue
    from notifications.recipients import Recipient

    with app.app_context():
        created = enqueue(db.session, [NotificationRequest(
            trigger=trigger, subject_citizen_id=subject,
            recipient=Recipient(recipient_kind, recipient or subject),
            natural_key=key or uuid.uuid4().hex,
            params=params or {"section": "immunizations", "entry_id": str(uuid.uuid4())},
        )])
        db.session.commit()
        return created


def deliveries(app: Any) -> list[Any]:
    """Every outbox row, detached (channel, status, attempts...)."""
    from core.db import db
    from notifications.models import Delivery

    with app.app_context():
        rows = list(db.session.scalars(select(Delivery).order_by(Delivery.created_at,
                                                                 Delivery.channel)))
        for row in rows:
            db.session.expunge(row)
        return rows


def process(app: Any, *, until_idle: bool = True) -> Any:
    from notifications.delivery import process_batch, process_until_idle

    with app.app_context():
        return process_until_idle() if until_idle else process_batch()

"""HTTP routes of the inbox, preferences and devices (DESIGN.md "API outline").

Every route acts on the caller's own notifications ("me"): a citizen's token reads the citizen's
inbox (including notifications about their dependants), a staff token its account's. Tokens of a
facility system (client credentials) have no person behind them: 403. Scopes: the SMART
`Communication` resource (``patient/Communication.rs``, ``user/Communication.cruds`` ...).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from auth.resource import current_caller, require_scope
from core.conditional import json_with_etag, require_if_match, version_etag
from core.db import db
from core.errors import BadRequest, Forbidden, Message, NotFound
from core.http import json_body
from core.i18n import current_language
from core.pagination import decode_cursor, encode_cursor, parse_limit
from core.schemas import load_or_problem
from notifications import devices as device_service
from notifications import inbox
from notifications import preferences as preference_service
from notifications.channels import ROUTE_WEBPUSH
from notifications.channels.vapid import application_server_key
from notifications.preferences import LANGUAGES, Preferences, registry_language
from notifications.recipients import Recipient
from notifications.runtime import runtime
from notifications.schemas import DeviceSchema, PreferencesSchema, channel_switches
from notifications.triggers import EXTERNAL_CHANNELS, IN_APP, PLATFORM_WEBPUSH, TRIGGERS

bp = Blueprint("notifications", __name__, url_prefix="/api/v1")

RESOURCE = "Communication"
INBOX_DEFAULT_LIMIT = 20
INBOX_MAX_LIMIT = 100


class RecipientRequired(Forbidden):
    code = "notification-recipient-required"


def _me(interaction: str) -> Recipient:
    """Authenticate, check the scope, and name whose notifications these are."""
    principal = current_caller()
    require_scope(resource=RESOURCE, interaction=interaction)
    if principal.role == "citizen" and principal.citizen_id is not None:
        return Recipient.citizen(principal.citizen_id)
    if principal.account_id is not None:
        return Recipient.account(principal.account_id)
    raise RecipientRequired()


def _now() -> dt.datetime:
    return runtime().settings.clock()


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return INBOX_DEFAULT_LIMIT
    return min(parse_limit(raw), INBOX_MAX_LIMIT)


def _flag(name: str) -> bool:
    raw = request.args.get(name, "").strip().lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise BadRequest(Message("problem.bad-request.detail"))


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound() from None


# Inbox ------------------------------------------------------------------------------------------
@bp.get("/me/notifications")
def list_my_notifications() -> Response:
    me = _me("s")
    session = db.session
    before = None
    cursor = request.args.get("cursor")
    if cursor:
        position = decode_cursor(cursor)
        try:
            before = (dt.datetime.fromisoformat(position["t"]), uuid.UUID(position["i"]))
        except (KeyError, ValueError, TypeError):
            raise BadRequest(Message("problem.invalid-cursor.detail"),
                             code="invalid-cursor") from None
    page, more = inbox.list_notifications(
        session, me, limit=_limit(), before=before, unread_only=_flag("unread_only")
    )
    items = inbox.render(session, me, page, lang=current_language())
    next_cursor = None
    if more and page:
        last = page[-1]
        next_cursor = encode_cursor({"t": last.created_at.isoformat(), "i": str(last.id)})
    payload = {
        "items": items,
        "next_cursor": next_cursor,
        "unread_count": inbox.unread_count(session, me),
    }
    return json_with_etag(payload)


@bp.get("/me/notifications/unread-count")
def my_unread_count() -> Response:
    me = _me("r")
    return jsonify(unread_count=inbox.unread_count(db.session, me))


@bp.post("/me/notifications/<notification_id>/read")
def mark_my_notification_read(notification_id: str) -> Response:
    me = _me("u")
    session = db.session
    notification = inbox.mark_read(session, me, _uuid(notification_id), now=_now())
    item = inbox.render(session, me, [notification], lang=current_language())[0]
    session.commit()
    return jsonify(item)


@bp.post("/me/notifications/read-all")
def mark_all_my_notifications_read() -> Response:
    me = _me("u")
    changed = inbox.mark_all_read(db.session, me, now=_now())
    db.session.commit()
    return jsonify(marked_read=changed, unread_count=0)


# Preferences ------------------------------------------------------------------------------------
def _preferences_payload(prefs: Preferences, language: str) -> dict[str, Any]:
    quiet = prefs.quiet_hours
    return {
        "triggers": {
            code: {IN_APP: True, **{c: prefs.wants(code, c) for c in EXTERNAL_CHANNELS}}
            for code in TRIGGERS
        },
        "urgent_triggers": sorted(code for code, t in TRIGGERS.items() if t.urgent),
        "quiet_hours": {
            "mode": prefs.quiet_mode,
            "start": f"{quiet.start:%H:%M}" if quiet else None,
            "end": f"{quiet.end:%H:%M}" if quiet else None,
            "time_zone": "Asia/Ho_Chi_Minh",
        },
        "language": prefs.language,
        "effective_language": language,
    }


def _etag(prefs: Preferences) -> str:
    return version_etag("notification-preferences", prefs.version)


@bp.get("/me/notification-preferences")
def get_my_preferences() -> Response:
    me = _me("r")
    session = db.session
    prefs = preference_service.get_preferences(
        session, me, service_quiet_hours=runtime().settings.quiet_hours
    )
    language = prefs.language if prefs.language in LANGUAGES else registry_language(session, me)
    return json_with_etag(_preferences_payload(prefs, language), etag=_etag(prefs))


@bp.put("/me/notification-preferences")
def put_my_preferences() -> Response:
    me = _me("u")
    session = db.session
    service_quiet = runtime().settings.quiet_hours
    current = preference_service.get_preferences(session, me, service_quiet_hours=service_quiet)
    require_if_match(_etag(current))
    body = load_or_problem(PreferencesSchema(), json_body())
    quiet = body.get("quiet_hours") or {"mode": preference_service.QUIET_DEFAULT}
    window = None
    if quiet["mode"] == preference_service.QUIET_CUSTOM:
        window = f"{quiet['start']}-{quiet['end']}"
    prefs = preference_service.replace_preferences(
        session, me,
        channels=channel_switches(body["triggers"]),
        quiet_mode=quiet["mode"], quiet_window=window, language=body.get("language"),
        service_quiet_hours=service_quiet,
    )
    language = prefs.language if prefs.language in LANGUAGES else registry_language(session, me)
    session.commit()
    response = jsonify(_preferences_payload(prefs, language))
    response.headers["ETag"] = _etag(prefs)
    return response


# Devices ----------------------------------------------------------------------------------------
def _device_payload(device: Any) -> dict[str, Any]:
    return {
        "id": str(device.id),
        "platform": device.platform,
        "created_at": device.created_at.isoformat(),
        "last_seen_at": device.last_seen_at.isoformat(),
    }


@bp.get("/me/devices")
def list_my_devices() -> Response:
    me = _me("s")
    found = device_service.list_devices(db.session, me)
    return json_with_etag({"items": [_device_payload(d) for d in found]})


@bp.post("/me/devices")
def register_my_device() -> Response:
    me = _me("c")
    body = load_or_problem(DeviceSchema(), json_body())
    state = runtime()
    if body["platform"] == PLATFORM_WEBPUSH and not state.channels.available(ROUTE_WEBPUSH):
        raise _webpush_unavailable()
    device, created = device_service.register_device(
        db.session, me, platform=body["platform"], token=body["token"],
        webpush_hosts=state.settings.webpush_endpoint_hosts, now=_now(),
    )
    db.session.commit()
    response = jsonify(_device_payload(device))
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/me/devices/{device.id}"
    return response


@bp.delete("/me/devices/<device_id>")
def remove_my_device(device_id: str) -> Response:
    me = _me("d")
    device_service.remove_device(db.session, me, _uuid(device_id), now=_now())
    db.session.commit()
    return Response(status=204)


@bp.get("/webpush/vapid-public-key")
def vapid_public_key() -> Response:
    _me("r")
    key = runtime().channels.vapid_private_key()
    if key is None:
        raise _webpush_unavailable()
    return jsonify(public_key=application_server_key(key))


def _webpush_unavailable() -> NotFound:
    return NotFound(Message("notification.webpush-unavailable"),
                    code="webpush-unavailable")

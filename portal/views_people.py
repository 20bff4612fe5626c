"""The portal's relationship and account pages: who looked at a record (and "I don't recognise
this"), consents (grant to someone found in the directory, revoke), access requests (approve,
deny), the notification inbox with Web Push, and the account's settings.

Every read and write is a call to the public API with the session's token, so the API decides
what a person (or a guardian, for a child) may see and do; its refusals become pages. POSTs
answer 303 to their page (Post/Redirect/Get) with a `done` flag naming a catalogue message;
only ids and opaque cursors ever ride in a URL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Response, request

import portal.people_messages  # noqa: F401 - registers the catalogue
from core.errors import BadRequest, Message
from core.i18n import current_language, has_message, translate
from portal.backend import ApiError
from portal.blueprint import bp
from portal.pages import csrf_token, render, see_other
from portal.web import LoginRequired, Portal, current_portal

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
PAGE_SIZE = 20
DIRECTORY_RESULTS = 10
CHANNELS = ("push", "sms", "email")
GRANTABLE_SECTIONS = (
    "summary", "immunizations", "immunization-schedule", "allergies", "conditions",
    "medications", "observations", "lab-results", "encounters", "examinations", "history",
    "family-history", "demographics",
)
RESTRICTED_CATEGORIES = ("mental-health", "hiv-sti", "reproductive", "substance-use", "genetic")
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")
_MAX_CURSOR = 1000
_MAX_QUERY = 100
# Where a notification about a person leads in the portal (the rest: that person's home).
_TRIGGER_PAGES = {
    "access-requested": "requests",
    "record-accessed": "access-log",
    "break-glass": "access-log",
    "access-flag-reviewed": "access-log",
    "consent-granted": "consents",
    "consent-revoked": "consents",
    "consent-expiring": "consents",
    "vaccination-due": "vaccinations",
    "vaccination-overdue": "vaccinations",
}


# --- small helpers ------------------------------------------------------------------------------


def _portal() -> Portal:
    """This request's logged-in session (no session: the login page, via LoginRequired)."""
    portal = current_portal()
    if portal is None:  # current_portal raised already; this only narrows the type
        raise LoginRequired()
    return portal


def _label(prefix: str, value: str | None) -> str:
    """A code said in words (the code itself for one this catalogue does not know yet)."""
    if not value:
        return translate("people.none")
    key = f"{prefix}.{value}"
    return translate(key) if has_message(key) else value


def _when(value: str | None) -> str:
    """An API timestamp in Vietnam's time, as people write it (dd/mm/yyyy hh:mm)."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M")


def _day(value: str | None) -> str:
    """The date of an API timestamp, in Vietnam's time (dd/mm/yyyy)."""
    return _when(value)[:10]


def _done(*allowed: str) -> str | None:
    """The confirmation flag of a Post/Redirect/Get (only known ones; never data)."""
    done = request.args.get("done", "")
    return done if done in allowed else None


def _cursor(value: str | None) -> str | None:
    return value if value and len(value) <= _MAX_CURSOR else None


def _back(path: str, **query: str | None) -> Response:
    """303 to one of our pages with only the given (non-personal) query values."""
    kept = {name: value for name, value in query.items() if value}
    return see_other(path + ("?" + urlencode(kept) if kept else ""))


def _person_context(portal: Portal, citizen_id: str) -> dict[str, Any]:
    """The layout's person and, for someone else's record (a child's), their name."""
    name = None
    for entry in portal.people():
        if entry["id"] == citizen_id and not entry["self"]:
            name = entry["name"]
    return {"person_id": citizen_id, "person_name": name}


def _flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """{field: [messages]} of a problem's `errors`, nested objects joined with dots."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for name, value in errors.items():
            flat.update(_flatten_errors(value, f"{prefix}.{name}" if prefix else str(name)))
    elif isinstance(errors, list):
        for value in errors:
            if isinstance(value, str):
                flat.setdefault(prefix, []).append(value)
            else:
                for name, messages in _flatten_errors(value, prefix).items():
                    flat.setdefault(name, []).extend(messages)
    elif errors is not None:
        flat.setdefault(prefix, []).append(str(errors))
    return flat


def _form_errors(error: ApiError, fields: dict[str, str]) -> dict[str, list[str]]:
    """The API's field errors keyed by this form's fields (`fields`: API field prefix -> form
    field); anything else under "" (shown at the top of the form)."""
    placed: dict[str, list[str]] = {}
    for name, messages in _flatten_errors(error.errors).items():
        target = next((form for api, form in fields.items()
                       if name == api or name.startswith(api + ".")), "")
        placed.setdefault(target, []).extend(messages)
    return placed


# --- the access log ------------------------------------------------------------------------------


def _access_event(item: dict[str, Any]) -> dict[str, Any]:
    actor = item.get("actor") or {}
    facility = actor.get("facility") or {}
    why = [_label("people.purpose", item.get("purpose"))] if item.get("purpose") else []
    if item.get("consent_id"):
        why.append(translate("people.access-log.under-consent"))
    reason = (item.get("break_glass") or {}).get("reason")
    if reason:
        why.append(translate("people.access-log.emergency-reason", reason=reason))
    flag = item.get("flag")
    flag_text = None
    if flag:
        flag_text = (translate("people.access-log.reviewed",
                               outcome=_label("people.outcome", flag.get("outcome")))
                     if flag.get("status") == "reviewed" else
                     translate("people.access-log.flagged"))
    return {
        "id": item["id"],
        "when": _when(item.get("occurred_at")),
        "occurred_at": item.get("occurred_at"),
        "text": item.get("text") or "",
        "who": actor.get("name") or _label("people.actor", actor.get("kind")),
        "role": _label("people.actor", actor.get("kind")),
        "facility": facility.get("name"),
        "why": "; ".join(why) or translate("people.none"),
        "denied": item.get("decision") == "deny",
        "emergency": bool(item.get("emergency")),
        "flagged": flag is not None,
        "flag_text": flag_text,
        "flag_note": (flag or {}).get("outcome_note"),
    }


@bp.get("/people/<uuid:citizen_id>/access-log")
def access_log(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    person = str(citizen_id)
    cursor = _cursor(request.args.get("cursor"))
    page = portal.get(f"/api/v1/citizens/{person}/access-log", limit=PAGE_SIZE, cursor=cursor)
    return render("portal/people_access_log.html", section="access-log",
                  events=[_access_event(item) for item in page.get("items") or []],
                  next_cursor=page.get("next_cursor"), cursor=cursor,
                  done=_done("flagged"), **_person_context(portal, person))


@bp.post("/people/<uuid:citizen_id>/access-log/<uuid:event_id>/flag")
def flag_access(citizen_id: uuid.UUID, event_id: uuid.UUID) -> Response:
    portal = _portal()
    portal.send("POST", f"/api/v1/citizens/{citizen_id}/access-log/{event_id}/flag",
                json_body={})
    return _back(f"/people/{citizen_id}/access-log", done="flagged",
                 cursor=_cursor(request.form.get("cursor")))


# --- consents ------------------------------------------------------------------------------------


def _search_directory(portal: Portal, query: str) -> dict[str, list[dict[str, Any]]]:
    """Practitioners and facilities of the public register whose name matches `query`."""
    practitioners = portal.get("/api/v1/practitioners", q=query, limit=DIRECTORY_RESULTS)
    facilities = portal.get("/api/v1/facilities", q=query, limit=DIRECTORY_RESULTS)
    return {
        "practitioners": [{
            "value": f"practitioner:{p['id']}",
            "name": p["full_name"],
            "details": ", ".join([_label("people.profession", p.get("profession"))] + [
                m["facility"]["name"] for m in p.get("memberships") or []]),
        } for p in practitioners.get("items") or []],
        "facilities": [{
            "value": f"facility:{f['id']}",
            "name": f["name"],
            "details": ", ".join(part for part in (
                _label("people.kind", f.get("kind")), f.get("commune_name"),
                f.get("province_name")) if part),
        } for f in facilities.get("items") or []],
    }


def _consent_view(item: dict[str, Any]) -> dict[str, Any]:
    grantee = item.get("grantee") or {}
    return {
        "id": item["id"],
        "name": grantee.get("name") or _label("people.grantee", grantee.get("type")),
        "kind": _label("people.grantee", grantee.get("type")),
        "sections": [_label("people.section", s) for s in item.get("sections") or []],
        "categories": [_label("people.category", c) for c in item.get("categories") or []],
        "access": _label("people.access", item.get("access")),
        "expires": _day(item["expires_at"]) if item.get("expires_at") else
        translate("people.until-revoked"),
        "granted_on": _day(item.get("created_at")),
    }


def _consents_page(portal: Portal, person: str, *, query: str, form: dict[str, Any],
                   errors: dict[str, list[str]], problem: str | None = None,
                   status: int = 200) -> Response:
    consents = portal.get(f"/api/v1/citizens/{person}/consents")
    results = _search_directory(portal, query) if query else None
    return render("portal/people_consents.html", status=status, section="consents",
                  consents=[_consent_view(c) for c in consents.get("items") or []],
                  query=query, results=results, form=form, errors=errors, problem=problem,
                  sections=GRANTABLE_SECTIONS, categories=RESTRICTED_CATEGORIES,
                  request_key=str(uuid.uuid4()), done=_done("granted", "revoked"),
                  **_person_context(portal, person))


@bp.get("/people/<uuid:citizen_id>/consents")
def consents(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    query = request.args.get("q", "").strip()[:_MAX_QUERY]
    return _consents_page(portal, str(citizen_id), query=query,
                          form={"access": "read", "sections": [], "categories": []}, errors={})


def _expiry(value: str) -> str | None:
    """The end of the chosen day in Vietnam (a value that is no date goes to the API as it is,
    which names the field in its answer)."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return value
    return dt.datetime.combine(day, dt.time(23, 59, 59), VIETNAM).isoformat()


@bp.post("/people/<uuid:citizen_id>/consents")
def grant_consent(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    person = str(citizen_id)
    typed = {
        "grantee": request.form.get("grantee", ""),
        "sections": request.form.getlist("sections"),
        "categories": request.form.getlist("categories"),
        "access": request.form.get("access") or "read",
        "expires_on": request.form.get("expires_on", "").strip(),
    }
    query = request.form.get("q", "").strip()[:_MAX_QUERY]
    kind, _, grantee_id = typed["grantee"].partition(":")
    try:
        uuid.UUID(grantee_id)
        chosen = kind in ("practitioner", "facility")
    except ValueError:
        chosen = False
    if not chosen:
        return _consents_page(portal, person, query=query, form=typed, status=422, errors={
            "grantee": [translate("people.consents.grantee-required")]})
    body: dict[str, Any] = {
        "grantee": {"type": kind, "id": grantee_id}, "sections": typed["sections"],
        "categories": typed["categories"], "access": typed["access"],
        "expires_at": _expiry(typed["expires_on"]),
    }
    key = request.form.get("request_key", "")
    headers = {"Idempotency-Key": key} if _IDEMPOTENCY_KEY.fullmatch(key) else None
    try:
        portal.send("POST", f"/api/v1/citizens/{person}/consents", json_body=body,
                    headers=headers)
    except ApiError as error:
        if error.status not in (400, 403, 409, 422):
            raise
        return _consents_page(
            portal, person, query=query, form=typed, status=error.status,
            problem=error.detail or error.title,
            errors=_form_errors(error, {"grantee": "grantee", "sections": "sections",
                                        "categories": "categories", "access": "access",
                                        "expires_at": "expires_on"}))
    return _back(f"/people/{person}/consents", done="granted")


@bp.post("/people/<uuid:citizen_id>/consents/<uuid:consent_id>/revoke")
def revoke_consent(citizen_id: uuid.UUID, consent_id: uuid.UUID) -> Response:
    portal = _portal()
    portal.send("DELETE", f"/api/v1/citizens/{citizen_id}/consents/{consent_id}")
    return _back(f"/people/{citizen_id}/consents", done="revoked")


# --- access requests ----------------------------------------------------------------------------


def _request_view(item: dict[str, Any]) -> dict[str, Any]:
    practitioner = item.get("practitioner") or {}
    facility = item.get("facility") or {}
    return {
        "id": item["id"],
        "who": practitioner.get("name") or translate("people.requests.someone"),
        "profession": _label("people.profession", practitioner.get("profession"))
        if practitioner.get("profession") else None,
        "facility": facility.get("name"),
        "sections": [_label("people.section", s) for s in item.get("sections") or []],
        "categories": [_label("people.category", c) for c in item.get("categories") or []],
        "access": _label("people.access", item.get("access")),
        "reason": item.get("reason"),
        "asked_on": _when(item.get("created_at")),
        "answered_on": _when(item.get("answered_at")),
        "status": item.get("status"),
        "status_text": _label("people.requests.status", item.get("status")),
    }


@bp.get("/people/<uuid:citizen_id>/requests")
def access_requests(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    person = str(citizen_id)
    listed = [_request_view(item) for item in
              portal.get(f"/api/v1/citizens/{person}/access-requests").get("items") or []]
    return render("portal/people_requests.html", section="requests",
                  pending=[r for r in listed if r["status"] == "pending"],
                  answered=[r for r in listed if r["status"] != "pending"][:PAGE_SIZE],
                  done=_done("approved", "denied"), **_person_context(portal, person))


def _answer(citizen_id: uuid.UUID, request_id: uuid.UUID, answer: str, done: str) -> Response:
    portal = _portal()
    portal.send("POST", f"/api/v1/citizens/{citizen_id}/access-requests/{request_id}/{answer}",
                json_body={})
    return _back(f"/people/{citizen_id}/requests", done=done)


@bp.post("/people/<uuid:citizen_id>/requests/<uuid:request_id>/approve")
def approve_access_request(citizen_id: uuid.UUID, request_id: uuid.UUID) -> Response:
    # The API's default term (30 days) applies; the page says so.
    return _answer(citizen_id, request_id, "approve", "approved")


@bp.post("/people/<uuid:citizen_id>/requests/<uuid:request_id>/deny")
def deny_access_request(citizen_id: uuid.UUID, request_id: uuid.UUID) -> Response:
    return _answer(citizen_id, request_id, "deny", "denied")


# --- notifications -------------------------------------------------------------------------------


def _notification_view(item: dict[str, Any], people: set[str]) -> dict[str, Any]:
    subject = item.get("subject_citizen_id")
    link = None
    if subject in people:
        page = _TRIGGER_PAGES.get(str(item.get("trigger")))
        link = f"/people/{subject}" + (f"/{page}" if page else "")
    return {
        "id": item["id"],
        "title": item.get("title") or "",
        "body": item.get("body") or "",
        "when": _when(item.get("created_at")),
        "created_at": item.get("created_at"),
        "unread": not item.get("read_at"),
        "urgent": bool(item.get("urgent")),
        "link": link,
    }


def _vapid_public_key(portal: Portal) -> str | None:
    """The key the browser subscribes with; None when this server has no Web Push."""
    answer = portal.call("GET", "/api/v1/webpush/vapid-public-key")
    if not answer.ok:
        return None
    return str((answer.json() or {}).get("public_key") or "") or None


def _push_attributes() -> dict[str, str]:
    """What push.js needs, for the template's data-* attributes (no inline script)."""
    lang = current_language()
    return {
        "csrf": csrf_token(),
        "endpoint": "/notifications/devices",
        "worker": "/static/portal/sw.js?" + urlencode({
            "title": translate("people.push.fallback-title", lang),
            "body": translate("people.push.fallback-body", lang)}),
        "scope": "/static/portal/",
        "msg_working": translate("people.push.working", lang),
        "msg_on": translate("people.push.on", lang),
        "msg_denied": translate("people.push.denied", lang),
        "msg_failed": translate("people.push.failed", lang),
    }


@bp.get("/notifications")
def notifications() -> Response:
    portal = _portal()
    cursor = _cursor(request.args.get("cursor"))
    page = portal.get("/api/v1/me/notifications", limit=PAGE_SIZE, cursor=cursor)
    people = {entry["id"] for entry in portal.people()}
    return render("portal/people_notifications.html", section="notifications",
                  items=[_notification_view(item, people) for item in page.get("items") or []],
                  unread_count=int(page.get("unread_count") or 0),
                  next_cursor=page.get("next_cursor"), cursor=cursor,
                  vapid_key=_vapid_public_key(portal), push=_push_attributes(),
                  done=_done("read", "all-read"))


@bp.post("/notifications/<uuid:notification_id>/read")
def mark_notification_read(notification_id: uuid.UUID) -> Response:
    portal = _portal()
    portal.send("POST", f"/api/v1/me/notifications/{notification_id}/read")
    return _back("/notifications", done="read", cursor=_cursor(request.form.get("cursor")))


@bp.post("/notifications/read-all")
def mark_all_notifications_read() -> Response:
    portal = _portal()
    portal.send("POST", "/api/v1/me/notifications/read-all")
    return _back("/notifications", done="all-read")


def _no_content() -> Response:
    response = Response(status=204)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/notifications/devices")
def register_push_device() -> Response:
    """Called by push.js (JSON, CSRF token in X-CSRF-Token) with the browser's
    PushSubscription; registered for the account through the devices API."""
    portal = _portal()
    subscription = request.get_json(silent=True)
    keys = subscription.get("keys") if isinstance(subscription, dict) else None
    if not (isinstance(subscription, dict) and isinstance(subscription.get("endpoint"), str)
            and isinstance(keys, dict) and isinstance(keys.get("p256dh"), str)
            and isinstance(keys.get("auth"), str)):
        # A problem+json for the script (its Accept prefers JSON), in the page's language.
        raise BadRequest(Message("people.push.bad-subscription.detail"),
                         title=Message("people.push.bad-subscription.title"),
                         code="invalid-push-subscription")
    token = json.dumps({"endpoint": subscription["endpoint"],
                        "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}},
                       separators=(",", ":"))
    answer = portal.call("POST", "/api/v1/me/devices",
                         json_body={"platform": "webpush", "token": token})
    if answer.ok:
        return _no_content()
    return Response(answer.body, status=answer.status,
                    content_type=answer.headers.get("Content-Type", "application/problem+json"),
                    headers={"Cache-Control": "no-store"})


# --- settings ------------------------------------------------------------------------------------


def _preferences(portal: Portal) -> tuple[dict[str, Any], str]:
    """The account's notification preferences and their ETag."""
    answer = portal.call("GET", "/api/v1/me/notification-preferences")
    if not answer.ok:
        raise ApiError(answer)
    return answer.json(), str(answer.headers.get("ETag") or "")


def _settings_page(prefs: dict[str, Any], version: str, *, errors: dict[str, list[str]],
                   problem: str | None = None, status: int = 200) -> Response:
    urgent = set(prefs.get("urgent_triggers") or [])
    triggers = [{"code": code, "label": _label("people.trigger", code),
                 "urgent": code in urgent, "channels": channels}
                for code, channels in (prefs.get("triggers") or {}).items()]
    quiet = prefs.get("quiet_hours") or {"mode": "default"}
    default_window = (f"{quiet['start']}–{quiet['end']}"
                      if quiet.get("mode") == "default" and quiet.get("start") else None)
    return render("portal/people_settings.html", status=status, section="settings",
                  triggers=triggers, quiet=quiet, default_window=default_window,
                  language=prefs.get("language") or current_language(), version=version,
                  channels=CHANNELS, errors=errors, problem=problem, done=_done("saved"))


@bp.get("/settings")
def settings() -> Response:
    portal = _portal()
    prefs, version = _preferences(portal)
    return _settings_page(prefs, version, errors={})


@bp.post("/settings")
def save_settings() -> Response:
    portal = _portal()
    current, _ = _preferences(portal)
    form = request.form
    triggers = {code: {channel: form.get(f"ch.{code}.{channel}") == "on" for channel in CHANNELS}
                for code in current.get("triggers") or {}}
    mode = form.get("quiet_mode", "default")
    quiet: dict[str, Any] = {"mode": mode}
    if mode == "custom":
        quiet.update(start=form.get("quiet_start", "").strip() or None,
                     end=form.get("quiet_end", "").strip() or None)
    language = form.get("language") or None
    body = {"triggers": triggers, "quiet_hours": quiet, "language": language}
    version = form.get("version", "")
    answer = portal.call("PUT", "/api/v1/me/notification-preferences", json_body=body,
                         headers={"If-Match": version} if version else None)
    if answer.status == 412:
        fresh, fresh_version = _preferences(portal)
        # Someone saved in between (another device): show theirs, ask to save again.
        return _settings_page(fresh, fresh_version, errors={}, status=409,
                              problem=translate("people.settings.changed-elsewhere"))
    if answer.status in (400, 422):
        error = ApiError(answer)
        typed = {**current, "language": language, "quiet_hours": {**quiet},
                 "triggers": {code: {**channels, "in_app": True}
                              for code, channels in triggers.items()}}
        return _settings_page(typed, version, status=422, problem=error.detail or error.title,
                              errors=_form_errors(error, {"quiet_hours": "quiet",
                                                          "language": "language",
                                                          "triggers": "triggers"}))
    if not answer.ok:
        raise ApiError(answer)
    # The portal speaks the chosen language from now on too (the lead's cookie route).
    done = "/settings?done=saved"
    if language in ("vi", "en"):
        return see_other("/language?" + urlencode({"to": language, "next": done}))
    return see_other(done)


"""The record pages: a person's summary with the blood-pressure and glucose trend, the
vaccination card and schedule, adding a home measurement or a past dose, the export downloads
and sharing the summary by QR code.

Every read and write is a call to the public API with the session's token (portal.web): the
same scopes, decision point and audit as the phone app. A person the viewer may not see gets
the API's 404/403, which portal.blueprint turns into an error page in the reader's language.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from typing import Any

from flask import Response, request

import portal.record_messages  # noqa: F401 - registers the catalogue
from core.i18n import current_language, translate
from portal import chart
from portal import record_format as fmt
from portal.backend import ApiError, ApiResponse
from portal.blueprint import bp
from portal.pages import error_page, render, see_other
from portal.web import LoginRequired, Portal, current_portal

PERSON = "/people/<uuid:citizen_id>"
TREND_KINDS = ("blood-pressure", "blood-glucose")
# Per kind: two weeks of twice-daily readings. The list has no kind filter, so the chart reads
# at most this many pages of the newest observations (weight, height... are skipped).
TREND_POINTS = 30
TREND_PAGE_SIZE = 200
TREND_PAGES = 3
TREND_FIELDS = ("id,source,data.kind,data.value,data.unit,data.systolic,data.diastolic,"
                "data.effective_at,data.method")
SVG_HEADERS = {
    # Shown through <img>, where nothing runs; the policy keeps it so if opened on its own.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DOWNLOAD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SHARE_HOURS = (1, 4, 24)  # the API allows at most 24 h
DEFAULT_SHARE_HOURS = 4
DONE_FLAGS = {"measurement", "dose", "revoked"}


def _portal() -> Portal:
    portal = current_portal()
    if portal is None:  # current_portal() raises first; this keeps the type exact
        raise LoginRequired()
    return portal


def _lang() -> str:
    return current_language()


def _formatters() -> dict[str, Any]:
    lang = _lang()
    return {
        "day": lambda value: fmt.day(value, lang),
        "moment": lambda value: fmt.moment(value, lang),
        "num": lambda value: fmt.number(value, lang),
        "unit": lambda value: fmt.unit(value, lang),
        "measured": lambda data: fmt.observation_value(data or {}, lang),
    }


def _done() -> str | None:
    flag = request.args.get("done", "")
    return flag if flag in DONE_FLAGS else None


def _person(portal: Portal, citizen_id: str) -> dict[str, str]:
    """Whom a form page is about: one of the viewer's people (from /api/v1/me, which the
    layout reads anyway), else whatever the API says (404 to a stranger)."""
    for person in portal.people():
        if person["id"] == citizen_id:
            return {"id": citizen_id, "name": person.get("name") or ""}
    citizen = portal.get(f"/api/v1/citizens/{citizen_id}")
    return {"id": citizen_id, "name": str(citizen.get("full_name") or "")}


def _new_key(raw: str | None = None) -> str:
    """The form's Idempotency-Key: the one it was rendered with (a double submit records
    once), or a fresh one when it is missing or not a UUID."""
    try:
        return str(uuid.UUID(raw or ""))
    except ValueError:
        return str(uuid.uuid4())


def _form_number(raw: str | None, *, integer: bool = False) -> Any:
    """A typed number as JSON (a decimal comma is fine); text that is no number goes to the
    API as text, which then says what is wrong in its own words; empty means not given."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    if integer:
        return int(value) if value.is_integer() else text
    return int(value) if value.is_integer() else value


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if value not in (None, "")}


def _refused_form(error: ApiError) -> bool:
    """A refusal the form can explain (bad values) rather than an error page."""
    return error.status in (400, 409, 422)


def _form_detail(error: ApiError) -> str:
    """The API's sentence when no field is named (a reused key, a conflict); with field
    messages, the page's own lead ("correct the fields marked below") reads better."""
    return "" if error.errors else error.detail


def _key_reused(error: ApiError) -> bool:
    return str(error.problem.get("type", "")).endswith("idempotency-key-reused")


# --- home ------------------------------------------------------------------------------------


def person_home(portal: Portal, citizen_id: str | uuid.UUID | None) -> Response:
    """The person's summary. One API call (the summary) besides the layout's /api/v1/me: the
    chart's values are read by the chart's own request, so the page stays as fast as the
    JSON summary."""
    if not citizen_id:
        return error_page(status=404, title=translate("portal.record.no-record.title"),
                          detail=translate("portal.record.no-record.detail"))
    citizen_id = str(citizen_id)
    summary = portal.get(f"/api/v1/citizens/{citizen_id}/summary")
    lang = _lang()
    shown = set(summary.get("sections_shown") or [])
    vitals = summary.get("latest_vitals") or []
    trend_latest = [v for v in vitals if (v.get("data") or {}).get("kind") in TREND_KINDS]
    trend_kinds = {v["data"]["kind"] for v in trend_latest}
    vaccination = summary.get("vaccination") or {}
    next_due = vaccination.get("next_due")
    return render(
        "portal/record_home.html", section="home", person_id=citizen_id,
        summary=summary, citizen=summary.get("citizen") or {}, shown=shown, vitals=vitals,
        trend_latest=trend_latest, trend_kinds=trend_kinds, show_trend="observations" in shown,
        chart_alt=_chart_alt(trend_latest, lang), counts=vaccination.get("counts") or {},
        next_due=next_due, next_due_words=fmt.dose_words(next_due, lang) if next_due else "",
        done=_done(), **_formatters(),
    )


def _chart_alt(latest: list[dict[str, Any]], lang: str) -> str:
    if not latest:
        return translate("portal.record.chart.alt-empty", lang)
    parts = [f"{(v.get('display') or {}).get('kind') or v['data']['kind']} "
             f"{fmt.observation_value(v['data'], lang)} "
             f"({fmt.day(v['data'].get('effective_at'), lang)})" for v in latest]
    return translate("portal.record.chart.alt", lang, latest="; ".join(parts))


@bp.get(PERSON)
def person_page(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    return person_home(portal, citizen_id)


def trend_points(portal: Portal, citizen_id: str) -> dict[str, list[dict[str, Any]]]:
    """The newest blood-pressure and glucose readings (oldest first), each with its local
    time, as the observations list shows them to this viewer."""
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in TREND_KINDS}
    cursor = None
    for _ in range(TREND_PAGES):
        page = portal.get(f"/api/v1/citizens/{citizen_id}/observations",
                          limit=TREND_PAGE_SIZE, cursor=cursor, fields=TREND_FIELDS)
        for item in page.get("items") or []:
            data = item.get("data") or {}
            kind = data.get("kind")
            at = fmt.local_time(data.get("effective_at"))
            if kind in found and at is not None and len(found[kind]) < TREND_POINTS:
                found[kind].append({**data, "at": at, "source": item.get("source")})
        cursor = page.get("next_cursor")
        if not cursor or all(len(points) >= TREND_POINTS for points in found.values()):
            break
    return {kind: sorted(points, key=lambda p: p["at"]) for kind, points in found.items()}


@bp.get(PERSON + "/trend.svg")
def trend_chart(citizen_id: uuid.UUID) -> Response:
    """The trend chart as SVG, drawn here (pygal); the page shows it through <img>."""
    portal = _portal()
    points = trend_points(portal, str(citizen_id))
    lang = _lang()

    def wall(at: dt.datetime) -> dt.datetime:
        return at.replace(tzinfo=None)  # pygal draws naive times as they are

    def number(value: float) -> str:
        return fmt.number(value, lang)

    pressure = [(wall(p["at"]), float(p["systolic"]), float(p["diastolic"]))
                for p in points["blood-pressure"]
                if isinstance(p.get("systolic"), int | float)
                and isinstance(p.get("diastolic"), int | float)]
    glucose = [(wall(p["at"]), float(p["value"])) for p in points["blood-glucose"]
               if isinstance(p.get("value"), int | float)]
    texts = chart.TrendTexts(
        title=translate("portal.record.chart.title", lang),
        systolic=translate("portal.record.chart.systolic", lang),
        diastolic=translate("portal.record.chart.diastolic", lang),
        glucose=translate("portal.record.chart.glucose", lang),
        no_data=translate("portal.record.chart.no-data", lang),
    )
    svg = chart.trend_svg(pressure=pressure, glucose=glucose, texts=texts, number=number)
    response = Response(svg, content_type="image/svg+xml; charset=utf-8")
    response.headers.update(SVG_HEADERS)
    response.headers["Content-Language"] = lang
    return response


@bp.get(PERSON + "/measurements")
def measurements(citizen_id: uuid.UUID) -> Response:
    """The chart's values as a table (its accessible form)."""
    portal = _portal()
    person_id = str(citizen_id)
    points = trend_points(portal, person_id)
    rows = sorted([*points["blood-pressure"], *points["blood-glucose"]],
                  key=lambda p: p["at"], reverse=True)
    return render("portal/record_measurements.html", section="home", person_id=person_id,
                  person=_person(portal, person_id), rows=rows, **_formatters())


# --- adding a home measurement -----------------------------------------------------------------

MEASUREMENT_FIELDS = {"systolic": "systolic", "diastolic": "diastolic", "value": "glucose",
                      "unit": "glucose_unit", "effective_at": "measured_date", "kind": "kind"}
GLUCOSE_UNITS = ("mmol/L", "mg/dL")


@bp.route(PERSON + "/measurements/new", methods=["GET", "POST"])
def new_measurement(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    person_id = str(citizen_id)
    if request.method == "GET":
        now = dt.datetime.now(fmt.VIETNAM)
        values = {"kind": "blood-pressure", "glucose_unit": "mmol/L",
                  "measured_date": now.date().isoformat(), "measured_time": f"{now:%H:%M}",
                  "idempotency_key": _new_key()}
        return _measurement_form(portal, person_id, values, {})
    form = request.form
    values = {name: form.get(name, "").strip() for name in (
        "kind", "systolic", "diastolic", "glucose", "glucose_unit", "measured_date",
        "measured_time")}
    values["idempotency_key"] = _new_key(form.get("idempotency_key"))
    kind = values["kind"]
    if kind not in TREND_KINDS:
        return _measurement_form(portal, person_id, values, {
            "kind": [translate("portal.record.measure.kind-required")]}, status=422)
    body: dict[str, Any] = {"kind": kind, "method": "home",
                            "effective_at": _effective_at(values["measured_date"],
                                                          values["measured_time"])}
    if kind == "blood-pressure":
        body.update(systolic=_form_number(values["systolic"]),
                    diastolic=_form_number(values["diastolic"]), unit="mm[Hg]")
    else:
        glucose_unit = values["glucose_unit"] if values["glucose_unit"] in GLUCOSE_UNITS \
            else "mmol/L"
        body.update(value=_form_number(values["glucose"]), unit=glucose_unit)
    refused = _submit_record_form(
        portal, f"/api/v1/citizens/{person_id}/observations", _compact(body), values,
        MEASUREMENT_FIELDS,
        lambda errors, **kw: _measurement_form(portal, person_id, values, errors, **kw))
    return refused or see_other(f"/people/{person_id}?done=measurement")


def _effective_at(day: str, time: str) -> str:
    """The moment typed in Viet Nam's time, as RFC 3339 (the API checks it)."""
    if len(time) == len("HH:MM"):  # <input type=time> leaves the seconds out
        time += ":00"
    return f"{day}T{time}+07:00"


def _measurement_form(portal: Portal, person_id: str, values: dict[str, str],
                      errors: dict[str, list[str]], *, detail: str = "",
                      status: int = 200) -> Response:
    return render("portal/record_measurement_form.html", status=status, section="home",
                  person_id=person_id, person=_person(portal, person_id), values=values,
                  errors=errors, detail=detail, glucose_units=GLUCOSE_UNITS)


def _field_errors(error: ApiError, fields: dict[str, str]) -> dict[str, list[str]]:
    """The API's field messages keyed by the form's field names ("_other" for the rest)."""
    mapped: dict[str, list[str]] = {}
    for name, messages in error.errors.items():
        target = fields.get(name, "_other")
        listed = messages if isinstance(messages, list) else [messages]
        mapped.setdefault(target, []).extend(str(m) for m in listed
                                             if not isinstance(m, dict | list))
        if isinstance(messages, dict):
            mapped.setdefault(target, []).extend(
                str(m) for inner in messages.values()
                for m in (inner if isinstance(inner, list) else [inner]))
    return mapped


# --- vaccinations ------------------------------------------------------------------------------


@bp.get(PERSON + "/vaccinations")
def vaccinations(citizen_id: uuid.UUID) -> Response:
    """The vaccination card and the schedule in words. One call: the card carries the
    schedule route's answer (null when the viewer may not read the schedule)."""
    portal = _portal()
    person_id = str(citizen_id)
    card = portal.get(f"/api/v1/citizens/{person_id}/vaccination-card")
    lang = _lang()
    schedule = card.get("schedule") or {}
    doses = [_with_words(dose, lang) for dose in schedule.get("doses") or []]
    groups = [
        ("attention", [d for d in doses if d["status"] in ("overdue", "due")]),
        ("upcoming", [d for d in doses if d["status"] == "upcoming"]),
        ("completed", [d for d in doses if d["status"] == "completed"]),
        ("missed", [d for d in doses if d["status"] == "missed"]),
    ]
    return render(
        "portal/record_vaccinations.html", section="vaccinations", person_id=person_id,
        citizen=card.get("citizen") or {}, has_schedule=card.get("schedule") is not None,
        counts=schedule.get("counts") or {}, groups=[g for g in groups if g[1]],
        given=_given_doses(card), adult=[_with_words(d, lang)
                                         for d in card.get("adult_schedule") or []],
        done=_done(), **_formatters(),
    )


def _with_words(dose: dict[str, Any], lang: str) -> dict[str, Any]:
    return {**dose, "words": fmt.dose_words(dose, lang),
            "css": fmt.STATUS_CLASSES.get(str(dose.get("status")), ""),
            "not_counted_words": [fmt.not_counted_words(item, lang)
                                  for item in dose.get("not_counted") or []]}


def _given_doses(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Each recorded dose once (the card lists a combination dose under each antigen),
    newest first."""
    seen: dict[str, dict[str, Any]] = {}
    for antigen in card.get("antigens") or []:
        for dose in antigen.get("doses") or []:
            seen.setdefault(str(dose.get("entry_id")), dose)
    return sorted(seen.values(), key=lambda d: str(d.get("occurrence_date") or ""),
                  reverse=True)


# --- adding a past dose from the vaccination book ------------------------------------------

DOSE_FIELDS = {"vaccine_code": "vaccine_code", "occurrence_date": "occurrence_date",
               "dose_number": "dose_number", "lot_number": "lot_number",
               "facility_name": "facility_name"}


@bp.route(PERSON + "/doses/new", methods=["GET", "POST"])
def new_dose(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    person_id = str(citizen_id)
    if request.method == "GET":
        return _dose_form(portal, person_id, {"dose_number": "1", "idempotency_key": _new_key()},
                          {})
    form = request.form
    values = {name: form.get(name, "").strip() for name in DOSE_FIELDS}
    values["idempotency_key"] = _new_key(form.get("idempotency_key"))
    body = _compact({
        "vaccine_code": values["vaccine_code"], "occurrence_date": values["occurrence_date"],
        "dose_number": _form_number(values["dose_number"], integer=True),
        "lot_number": values["lot_number"], "facility_name": values["facility_name"],
    })
    refused = _submit_record_form(
        portal, f"/api/v1/citizens/{person_id}/immunizations", body, values, DOSE_FIELDS,
        lambda errors, **kw: _dose_form(portal, person_id, values, errors, **kw))
    return refused or see_other(f"/people/{person_id}/vaccinations?done=dose")


def _submit_record_form(portal: Portal, path: str, body: dict[str, Any],
                        values: dict[str, str], fields: Any,
                        show_form: Callable[..., Response]) -> Response | None:
    """POST a record form once per rendered form (its Idempotency-Key, so a double tap on a
    slow network records once). None when recorded; else the form again with the API's
    reasons (and a fresh key when the API says this one was spent on another body)."""
    try:
        portal.send("POST", path, json_body=body,
                    headers={"Idempotency-Key": values["idempotency_key"]})
    except ApiError as error:
        if not _refused_form(error):
            raise
        if _key_reused(error):
            values["idempotency_key"] = _new_key()
        return show_form(_field_errors(error, fields), detail=_form_detail(error),
                         status=error.status)
    return None


def _dose_form(portal: Portal, person_id: str, values: dict[str, str],
               errors: dict[str, list[str]], *, detail: str = "",
               status: int = 200) -> Response:
    person = _person(portal, person_id)
    vaccines = portal.get("/api/v1/vaccines").get("items") or []
    return render("portal/record_dose_form.html", status=status, section="vaccinations",
                  person_id=person_id, person=person, vaccines=vaccines, values=values,
                  errors=errors, detail=detail, today=fmt.today().isoformat())


# --- export ----------------------------------------------------------------------------------


@bp.get(PERSON + "/export")
def export_page(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    person_id = str(citizen_id)
    return render("portal/record_export.html", section="export", person_id=person_id,
                  person=_person(portal, person_id))


@bp.get(PERSON + "/export.json")
def export_json(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    answer = portal.call("GET", f"/api/v1/citizens/{citizen_id}/export")
    return _download(answer, "application/json", "json")


@bp.get(PERSON + "/export.fhir.json")
def export_fhir(citizen_id: uuid.UUID) -> Response:
    portal = _portal()
    answer = portal.call("GET", f"/fhir/R4/Patient/{citizen_id}/$everything",
                         headers={"Accept": "application/fhir+json"})
    return _download(answer, "application/fhir+json", "fhir.json")


def _download(answer: ApiResponse, content_type: str, extension: str) -> Response:
    """The API's export as a file to save; a refusal is a page. The file name carries the
    date only: nothing personal in a name that lands in a downloads folder or history."""
    if not answer.ok:
        refused = ApiError(answer)
        if refused.problem.get("resourceType") == "OperationOutcome":
            return _outcome_page(refused)
        raise refused
    response = Response(answer.body, content_type=content_type)
    response.headers.update(DOWNLOAD_HEADERS)
    name = f"{translate('portal.record.export.filename')}-{fmt.today().isoformat()}.{extension}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _outcome_page(refused: ApiError) -> Response:
    """The FHIR face refuses with an OperationOutcome, not a problem: its first issue's
    title and text (already in the reader's language) make the page."""
    issues = refused.problem.get("issue") or [{}]
    details = (issues[0] or {}).get("details") or {}
    coding = (details.get("coding") or [{}])[0] or {}
    headers = {}
    if refused.response.headers.get("Retry-After"):
        headers["Retry-After"] = refused.response.headers["Retry-After"]
    return error_page(status=refused.status,
                      title=str(coding.get("display") or translate("portal.error.title")),
                      detail=str(details.get("text") or ""), headers=headers)


# --- share by QR code ----------------------------------------------------------------------

SHARE_FIELDS = {"label": "share_label", "expires_at": "expires_in", "passcode": "passcode",
                "single_use": "single_use"}


@bp.route(PERSON + "/share", methods=["GET", "POST"])
def share(citizen_id: uuid.UUID) -> Response:
    """The person's share links; a new one shows its QR code and link once, on the answer
    to the POST itself (the link is a capability: it is never put in a URL of ours, so it
    cannot be kept by a redirect, a history entry or a log)."""
    portal = _portal()
    person_id = str(citizen_id)
    path = f"/api/v1/citizens/{person_id}/share-links"
    if request.method == "GET":
        links = portal.get(path).get("items") or []
        return _share_page(portal, person_id, links, values={"expires_in": str(
            DEFAULT_SHARE_HOURS)}, done=_done())
    form = request.form
    values = {"share_label": form.get("share_label", "").strip(),
              "expires_in": form.get("expires_in", ""),
              "single_use": "on" if form.get("single_use") else ""}
    hours = int(values["expires_in"]) if values["expires_in"] in {
        str(h) for h in SHARE_HOURS} else DEFAULT_SHARE_HOURS
    values["expires_in"] = str(hours)
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).replace(microsecond=0)
    body: dict[str, Any] = _compact({"label": values["share_label"],
                                     "passcode": form.get("passcode", "")})
    body.update(expires_at=expires.isoformat(), single_use=bool(values["single_use"]))
    try:
        created = portal.send("POST", path, json_body=body)
    except ApiError as error:
        if not _refused_form(error):
            raise
        links = portal.get(path).get("items") or []
        return _share_page(portal, person_id, links, values=values,
                           errors=_field_errors(error, SHARE_FIELDS), detail=_form_detail(error),
                           status=error.status)
    links = portal.get(path).get("items") or []
    return _share_page(portal, person_id, links, values={"expires_in": str(hours)},
                       created=created)


def _share_page(portal: Portal, person_id: str, links: list[dict[str, Any]], *,
                values: dict[str, str], errors: dict[str, list[str]] | None = None,
                detail: str = "", created: dict[str, Any] | None = None,
                done: str | None = None, status: int = 200) -> Response:
    return render("portal/record_share.html", status=status, section="share",
                  person_id=person_id, person=_person(portal, person_id), links=links,
                  values=values, errors=errors or {}, detail=detail, created=created,
                  done=done, hours=SHARE_HOURS, **_formatters())


@bp.post(PERSON + "/share/<uuid:link_id>/revoke")
def revoke_share(citizen_id: uuid.UUID, link_id: uuid.UUID) -> Response:
    portal = _portal()
    portal.send("DELETE", f"/api/v1/citizens/{citizen_id}/share-links/{link_id}")
    return see_other(f"/people/{citizen_id}/share?done=revoked")

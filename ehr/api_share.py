"""HTTP surface of the SMART Health Links: the owner's routes under /api/v1 (token, scope,
consent) and the recipient's under /share (no token: the link is the capability).

Scope: every owner route asks for the summary's read scope (`patient/*.r`, the `summary`
target). A link is a deferred read of the whole summary handed to someone else, so a token
that could not read the summary itself must not be able to hand it on; and whatever may make
a link may list and revoke it (revoking only narrows what is shared).
"""

from __future__ import annotations

import uuid
from typing import Any

import click
from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from marshmallow import fields
from marshmallow.validate import Length

from auth.clock import now as clock_now
from auth.resource import current_caller, require_scope
from core.db import db
from core.errors import NotFound
from core.http import json_body
from core.i18n import SUPPORTED_LANGUAGES, current_language, translate
from core.schemas import ApiSchema, Text, load_or_problem
from ehr import share_links
from ehr.access import RecordAccess
from ehr.share_links import LABEL_MAX, LOCATION_SECONDS, PASSCODE_MAX, PASSCODE_MIN, Urls

bp = Blueprint("share", __name__, url_prefix="/api/v1")
# The manifest, file and viewer endpoints a recipient reaches from the link (no token).
public_bp = Blueprint("share_public", __name__, template_folder="templates",
                      static_folder="static/share", static_url_path="/static/share",
                      cli_group="share-links")

JOSE = "application/jose"
_LOCATION_SALT = "share-link-file-location"
# The viewer runs our own script only, talks to our own origin only, and cannot be framed.
_VIEWER_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class ShareLinkCreateSchema(ApiSchema):
    expires_at = fields.AwareDateTime(required=True)
    # A secret, compared as given: not trimmed or folded like free text.
    passcode = fields.String(load_default=None, allow_none=True,
                             validate=Length(min=PASSCODE_MIN, max=PASSCODE_MAX))
    single_use = fields.Boolean(load_default=False)
    label = Text(load_default=None, allow_none=True, validate=Length(min=1, max=LABEL_MAX))


def _access() -> RecordAccess:
    return RecordAccess(db.session, current_caller(), now=clock_now())


def _urls() -> Urls:
    base = current_app.config.get("SHARE_BASE_URL") or current_app.config["OAUTH_ISSUER"]
    return Urls(base=str(base).rstrip("/"))


@public_bp.record_once
def _answer_the_access_log(state: Any) -> None:
    from consent.access_log import SHARED_RECIPIENTS

    SHARED_RECIPIENTS.install(state.app, share_links.recipients_of)


# The owner's routes ----------

@bp.post("/citizens/<uuid:citizen_id>/share-links")
def create_share_link(citizen_id: uuid.UUID) -> Response:
    """Share the summary by SMART Health Link: the answer is the only one with the key."""
    require_scope(resource="summary", interaction="r")
    data = load_or_problem(ShareLinkCreateSchema(), json_body())
    view = share_links.create_link(
        _access(), citizen_id, expires_at=data["expires_at"], passcode=data["passcode"],
        single_use=data["single_use"], label=data["label"], urls=_urls())
    db.session.commit()
    response = jsonify(view)
    response.status_code = 201
    response.headers["Location"] = f"{request.path.rstrip('/')}/{view['id']}"
    return response


@bp.get("/citizens/<uuid:citizen_id>/share-links")
def list_share_links(citizen_id: uuid.UUID) -> Response:
    require_scope(resource="summary", interaction="r")
    items = share_links.list_links(_access(), citizen_id)
    db.session.commit()
    return jsonify({"items": items})


@bp.delete("/citizens/<uuid:citizen_id>/share-links/<uuid:link_id>")
def revoke_share_link(citizen_id: uuid.UUID, link_id: uuid.UUID) -> Response:
    require_scope(resource="summary", interaction="r")
    view = share_links.revoke_link(_access(), citizen_id, link_id)
    db.session.commit()
    return jsonify(view)


# The recipient's routes ----------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_LOCATION_SALT)


def _location_token(link_id: uuid.UUID, event_id: uuid.UUID) -> str:
    return str(_serializer().dumps({"l": str(link_id), "o": str(event_id)}))


def _jose(encrypted: str) -> Response:
    return Response(encrypted, status=200, content_type=JOSE)


@public_bp.after_request
def _open_to_any_viewer(response: Response) -> Response:
    # Any SMART Health Links viewer may resolve a link from a browser: no cookies or tokens
    # are involved (the link is the capability), so every origin may call these.
    if request.path.startswith(("/share/m/", "/share/u/", "/share/f/")):
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID"
    return response


@public_bp.post("/share/m/<manifest_id>")
def manifest(manifest_id: str) -> Response:
    """The SMART Health Links manifest request: `recipient`, `passcode` (flag P),
    `embeddedLengthMax`; 401 with `remainingAttempts`, 404 once the link has ended."""
    parsed = share_links.parse_manifest_request(json_body())
    answer = share_links.open_manifest(
        db.session, manifest_id, parsed, lang=current_language(), urls=_urls(),
        location_token=_location_token, request_id=g.get("request_id"))
    return jsonify(answer)


@public_bp.get("/share/u/<manifest_id>")
def direct_file(manifest_id: str) -> Response:
    """A `U` link's single encrypted file (GET with `recipient`), served once."""
    parsed = share_links.parse_manifest_request({"recipient": request.args.get("recipient")})
    encrypted = share_links.open_direct_file(
        db.session, manifest_id, recipient=parsed.recipient, lang=current_language(),
        request_id=g.get("request_id"))
    return _jose(encrypted)


@public_bp.get("/share/f/<token>")
def file_location(token: str) -> Response:
    """A manifest's short-lived `location` (signed, an hour at most)."""
    try:
        data: Any = _serializer().loads(token, max_age=LOCATION_SECONDS)
        link_id = uuid.UUID(data["l"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise NotFound() from None
    encrypted = share_links.open_location(db.session, link_id, lang=current_language(),
                                          request_id=g.get("request_id"))
    return _jose(encrypted)


@public_bp.get("/share/view")
def viewer() -> Response:
    """The viewer page: it reads the link from the URL fragment (never sent to us), asks for
    the manifest and decrypts the summary in the browser."""
    lang = request.args.get("lang") or current_language()
    if lang not in SUPPORTED_LANGUAGES:
        lang = current_language()
    texts = {key.removeprefix("share.viewer."): translate(key, lang) for key in _VIEWER_TEXTS}
    html = render_template("share/view.html", lang=lang, texts=texts,
                           other_lang="en" if lang == "vi" else "vi")
    response = Response(html, status=200, content_type="text/html; charset=utf-8")
    response.headers["Content-Language"] = lang
    for name, value in _VIEWER_HEADERS.items():
        response.headers[name] = value
    return response


_VIEWER_TEXTS = tuple(f"share.viewer.{name}" for name in (
    "title", "loading", "recipient", "passcode", "open", "wrong-passcode", "gone", "bad-link",
    "error", "note", "expires", "no-script"))


@public_bp.cli.command("purge")
def purge_command() -> None:
    """Wipe the keys of expired links (run it every few minutes)."""
    wiped = share_links.purge_expired(db.session, now=clock_now())
    db.session.commit()
    click.echo(f'{{"wiped": {wiped}}}')

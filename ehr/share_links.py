"""Sharing the International Patient Summary by SMART Health Link (issue 16).

A citizen, or a guardian acting for them, makes a link that lasts at most a day. The link is
the capability: its `shlink:/` payload names the manifest URL (256 random bits in the path) and
carries the 256-bit file key, so whoever holds the QR code can read the summary, and only they:
the server sends the file encrypted (compact JWE, `dir` + `A256GCM`) and the viewer decrypts it
with the key from the URL fragment, which browsers never send.

What the recipient gets is the summary the link's maker may read at the moment of the fetch
(the same decision and audit as `$summary`, asked for the maker): a guardianship that ends
ends the guardian's links with it. Each fetch is also an event in the citizen's audit chain
with the recipient's stated name, so the access log says who opened it.

The key lives in the database (encrypted under the citizen's data key) only while the link
lives: revocation, a spent single-use link and a passcode limit reached wipe it in the same
statement that ends the link; an expired link's key is wiped by the first request that meets
it and by `flask share-links purge`. Neither key nor passcode is ever logged.

Passcode guesses are counted per link over its lifetime. Each guess is charged before it is
checked, by a conditional UPDATE that succeeds only while charges remain, and refunded when the
passcode was right: parallel guesses cannot outrun the limit, whatever the number of workers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import segno
from joserfc import jwe
from joserfc.jwk import OctKey
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

import ehr.share_messages  # noqa: F401  (registers the texts)
from auth.clock import now as clock_now
from auth.passwords import hash_password, verify_password
from consent.pdp import RequestContext, record_decision
from consent.policy_types import Decision
from core.errors import Forbidden, Message, NotFound, Problem, ValidationFailed
from core.schemas import text_problems
from ehr.access import RecordAccess
from ehr.share_models import ShareLink, ShareLinkOpening
from registry.caller import Caller

MAX_LIFETIME = dt.timedelta(hours=24)
# Lifetime wrong passcodes per link (the spec asks for a total lifetime count). With passcodes
# of at least 6 characters an attacker's odds stay below 1 in 10^5.
PASSCODE_ATTEMPTS = 10
PASSCODE_MIN, PASSCODE_MAX = 6, 64
LABEL_MAX = 80  # the spec's limit for `label`
RECIPIENT_MAX = 200
FHIR_JSON = "application/fhir+json"
# `.files.location` links live at most an hour (the spec's ceiling).
LOCATION_SECONDS = 3600
# Who the maker's reads at fetch time are audited as coming from, and under which scope.
SHARE_CLIENT_ID = "share-link"
SHARE_SCOPES = frozenset({"patient/*.r"})
# The audit event of a recipient's fetch: who is no account of ours, so the role names them.
RECIPIENT_ROLE = "recipient"
OPENED_SECTION, OPENED_ACTION = "shared-summary", "open-shared"


class PasscodeRejected(Problem):
    """401 with the spec's `remainingAttempts` beside the problem's usual members."""

    status, code = 401, "share-passcode"

    def __init__(self, remaining: int) -> None:
        super().__init__(Message("problem.share-passcode.detail", remaining=remaining),
                         extra={"remainingAttempts": remaining})


# --- helpers ------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def manifest_hash(manifest_id: str) -> bytes:
    return hashlib.sha256(manifest_id.encode("ascii", "replace")).digest()


def status_of(link: ShareLink, now: dt.datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.spent_at is not None:
        return "spent"
    if link.locked_at is not None:
        return "locked"
    if link.expires_at <= now:
        return "expired"
    return "active"


def flags_of(link: ShareLink) -> str:
    # Alphabetical, as the spec asks. `U`: the URL is the file itself (GET), which we serve
    # once; `P` never goes with it (the spec forbids the pair).
    return ("P" if link.has_passcode else "") + ("U" if link.single_use else "")


def _lifetime_problem(expires_at: dt.datetime, now: dt.datetime) -> None:
    if expires_at <= now:
        raise ValidationFailed(errors={"expires_at": [Message("share.expires-in-past")]})
    if expires_at - now > MAX_LIFETIME:
        raise ValidationFailed(errors={"expires_at": [Message(
            "share.expires-too-late", hours=int(MAX_LIFETIME.total_seconds() // 3600))]})


# --- the citizen's side -------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    """Where the public endpoints live (absolute; the link leaves our hands)."""

    base: str

    def manifest(self, manifest_id: str) -> str:
        return f"{self.base}/share/m/{manifest_id}"

    def direct_file(self, manifest_id: str) -> str:
        return f"{self.base}/share/u/{manifest_id}"

    def location(self, token: str) -> str:
        return f"{self.base}/share/f/{token}"

    def viewer(self, shlink: str) -> str:
        return f"{self.base}/share/view#{shlink}"


def _require_sharer(access: RecordAccess, citizen_id: uuid.UUID) -> None:
    """The citizen or a guardian acting for them, with the summary's read permission."""
    from ehr import records

    records.get_citizen(access, citizen_id)
    if access.caller.role != "citizen" or access.caller.citizen_id is None:
        # Staff read the summary for care; handing it on to anyone is the person's own act.
        decision = access.decide(citizen_id=citizen_id, section="summary", action="read")
        if not decision.permit:
            access.deny(entry=False, decision=decision)
        raise Forbidden(Message("share.citizen-only"), code="share-citizen-only")
    access.require(citizen_id=citizen_id, section="summary", action="read")


def create_link(
    access: RecordAccess, citizen_id: uuid.UUID, *, expires_at: dt.datetime,
    passcode: str | None, single_use: bool, label: str | None, urls: Urls,
) -> dict[str, Any]:
    """Make a link and answer it once with its key: the `shlink:/`, the QR codes, the viewer
    URL. The caller commits."""
    now = access.now
    _lifetime_problem(expires_at, now)
    if passcode is not None and single_use:
        raise ValidationFailed(errors={"passcode": [Message("share.passcode-with-single-use")]})
    _require_sharer(access, citizen_id)
    purge_expired(access.session, now=now)
    manifest_id = b64url(secrets.token_bytes(32))
    key = b64url(secrets.token_bytes(32))
    caller = access.caller
    link = ShareLink(
        id=uuid.uuid4(), citizen_id=citizen_id, manifest_hash=manifest_hash(manifest_id),
        created_by_citizen_id=caller.citizen_id, created_by_account_id=caller.account_id,
        created_by_client_id=caller.client_id, single_use=single_use,
        has_passcode=passcode is not None,
        passcode_hash=hash_password(passcode) if passcode is not None else None,
        passcode_failures=0, created_at=now, expires_at=expires_at, opened_count=0,
    )
    link.key = key
    if label:
        link.label = label
    access.session.add(link)
    access.session.flush()
    payload: dict[str, Any] = {
        "url": urls.direct_file(manifest_id) if single_use else urls.manifest(manifest_id),
        "key": key,
        "exp": int(expires_at.timestamp()),
    }
    flag = flags_of(link)
    if flag:
        payload["flag"] = flag
    if label:
        payload["label"] = label
    shlink = "shlink:/" + b64url(json.dumps(payload, separators=(",", ":"),
                                            ensure_ascii=False).encode("utf-8"))
    view = link_view(link, now=now)
    view.update({"shlink": shlink, "viewer_url": urls.viewer(shlink), "qr": qr_codes(shlink)})
    return view


def qr_codes(shlink: str) -> dict[str, str]:
    """The link as QR codes, error correction M (the spec's recommendation), PNG and SVG."""
    # `boost_error=False`: exactly M, even where a higher level would fit the same version.
    code = segno.make(shlink, error="m", boost_error=False, micro=False)
    png, svg = io.BytesIO(), io.BytesIO()
    code.save(png, kind="png", scale=6, border=4)
    code.save(svg, kind="svg", scale=4, border=4, xmldecl=False, svgns=True)
    return {"error_correction": "M",
            "png_base64": base64.b64encode(png.getvalue()).decode("ascii"),
            "svg": svg.getvalue().decode("utf-8")}


def link_view(link: ShareLink, *, now: dt.datetime) -> dict[str, Any]:
    """A link as its owner lists it: never its key (shown once, at creation)."""
    label = link.label if link.label_ct is not None else None
    return {
        "id": str(link.id),
        "citizen_id": str(link.citizen_id),
        "label": label or None,
        "status": status_of(link, now),
        "flag": flags_of(link),
        "single_use": link.single_use,
        "passcode": link.has_passcode,
        "remaining_passcode_attempts": (PASSCODE_ATTEMPTS - link.passcode_failures
                                        if link.has_passcode else None),
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
        "opened_count": link.opened_count,
        "last_opened_at": link.last_opened_at.isoformat() if link.last_opened_at else None,
        "created_by_citizen_id": str(link.created_by_citizen_id),
    }


def list_links(access: RecordAccess, citizen_id: uuid.UUID) -> list[dict[str, Any]]:
    """The person's links, newest first (ended ones too, for a while: the owner sees what
    happened to each). The caller commits."""
    _require_sharer(access, citizen_id)
    purge_expired(access.session, now=access.now)
    links = access.session.scalars(
        select(ShareLink).where(ShareLink.citizen_id == citizen_id)
        .order_by(ShareLink.created_at.desc(), ShareLink.id).limit(100))
    return [link_view(link, now=access.now) for link in links]


def revoke_link(access: RecordAccess, citizen_id: uuid.UUID,
                link_id: uuid.UUID) -> dict[str, Any]:
    """End a link now (its key wiped in the same statement); again: the same answer."""
    _require_sharer(access, citizen_id)
    session = access.session
    session.execute(
        update(ShareLink)
        .where(ShareLink.id == link_id, ShareLink.citizen_id == citizen_id,
               ShareLink.revoked_at.is_(None))
        .values(revoked_at=access.now, key_ct=None, passcode_hash=None)
        .execution_options(synchronize_session=False))
    link = session.scalars(select(ShareLink).where(
        ShareLink.id == link_id, ShareLink.citizen_id == citizen_id)
        .execution_options(populate_existing=True)).one_or_none()
    if link is None:
        raise NotFound()
    return link_view(link, now=access.now)


def purge_expired(session: Session, *, now: dt.datetime) -> int:
    """Wipe the key and passcode hash of every link past its expiry (one indexed UPDATE)."""
    result = session.execute(
        update(ShareLink)
        .where(ShareLink.key_ct.is_not(None), ShareLink.expires_at <= now)
        .values(key_ct=None, passcode_hash=None)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- the recipient's side -----------------------------------------------------------------


@dataclass(frozen=True)
class ManifestRequest:
    recipient: str
    passcode: str | None
    embedded_length_max: int | None


def parse_manifest_request(body: dict[str, Any]) -> ManifestRequest:
    """The spec's manifest body; members it does not define are ignored, as it asks."""
    recipient = body.get("recipient")
    errors: dict[str, list[Message]] = {}
    if not isinstance(recipient, str) or not recipient.strip() or len(recipient) > RECIPIENT_MAX:
        errors["recipient"] = [Message("share.recipient-required")]
    else:
        problems = text_problems(recipient)
        if problems:
            errors["recipient"] = problems
    passcode = body.get("passcode")
    if passcode is not None and not isinstance(passcode, str):
        passcode = str(passcode)
    limit = body.get("embeddedLengthMax")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        errors["embeddedLengthMax"] = [Message("share.embedded-length-max")]
    if errors:
        raise ValidationFailed(errors=errors)
    return ManifestRequest(recipient=" ".join(str(recipient).split()), passcode=passcode,
                           embedded_length_max=limit)


def _live(session: Session, manifest_id: str, now: dt.datetime) -> ShareLink:
    """The live link of a manifest id, or 404 (unknown, expired, revoked, spent, locked)."""
    if len(manifest_id) != 43:
        raise NotFound()
    link = session.scalars(select(ShareLink).where(
        ShareLink.manifest_hash == manifest_hash(manifest_id))).one_or_none()
    if link is None:
        raise NotFound()
    if status_of(link, now) != "active" or link.key_ct is None:
        if link.key_ct is not None:
            link.key_ct = None
            link.passcode_hash = None
            session.commit()
        raise NotFound()
    return link


def _still_live(now: dt.datetime) -> Any:
    return and_(ShareLink.revoked_at.is_(None), ShareLink.spent_at.is_(None),
                ShareLink.locked_at.is_(None), ShareLink.expires_at > now,
                ShareLink.key_ct.is_not(None))


def _check_passcode(session: Session, link: ShareLink, passcode: str | None,
                    now: dt.datetime) -> None:
    """Charge one attempt, check, refund when right; 401 with what remains, 404 when none."""
    charged = session.execute(
        update(ShareLink)
        .where(ShareLink.id == link.id, ShareLink.passcode_failures < PASSCODE_ATTEMPTS,
               _still_live(now))
        .values(passcode_failures=ShareLink.passcode_failures + 1)
        .returning(ShareLink.passcode_failures, ShareLink.passcode_hash)
        .execution_options(synchronize_session=False)).one_or_none()
    # Committed before the check: a crash or a parallel request cannot undo the charge.
    session.commit()
    if charged is None:
        raise NotFound()
    failures, stored = charged
    if passcode and stored and verify_password(stored, passcode):
        session.execute(
            update(ShareLink).where(ShareLink.id == link.id)
            .values(passcode_failures=ShareLink.passcode_failures - 1)
            .execution_options(synchronize_session=False))
        session.commit()
        return
    remaining = PASSCODE_ATTEMPTS - failures
    if remaining <= 0:
        session.execute(
            update(ShareLink).where(ShareLink.id == link.id, ShareLink.locked_at.is_(None))
            .values(locked_at=now, key_ct=None, passcode_hash=None)
            .execution_options(synchronize_session=False))
        session.commit()
    raise PasscodeRejected(remaining)


def _maker_access(session: Session, link: ShareLink, *, request_id: str | None,
                  now: dt.datetime) -> RecordAccess:
    """The read is the maker's: the policy shows the recipient what the maker may see now."""
    # The scope the link was made under (the summary's read): it reads nothing more.
    maker = Caller(role="citizen", citizen_id=link.created_by_citizen_id,
                   account_id=link.created_by_account_id, client_id=SHARE_CLIENT_ID,
                   scopes=SHARE_SCOPES, request_id=request_id)
    return RecordAccess(session, maker, now=now)


def _summary_jwe(session: Session, link: ShareLink, *, lang: str, request_id: str | None,
                 now: dt.datetime) -> str:
    """The IPS of the link's citizen, encrypted under the link's key; 404 when the maker may
    no longer read it (their denial is audited as theirs)."""
    from ehr.fhir.ips import ips_bundle

    key = link.key
    if not isinstance(key, str):  # ERASED: the citizen's data key was destroyed
        raise NotFound()
    access = _maker_access(session, link, request_id=request_id, now=now)
    try:
        bundle = ips_bundle(access, link.citizen_id, lang=lang)
    except (Forbidden, NotFound):
        raise NotFound() from None
    return encrypt_file(bundle, key=key)


def encrypt_file(resource: dict[str, Any], *, key: str) -> str:
    """Compact JWE (`alg: dir`, `enc: A256GCM`, `cty`) under the link's key; a fresh random
    96-bit IV for every encryption, as the spec demands for a key used over time."""
    plaintext = json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header = {"alg": "dir", "enc": "A256GCM", "cty": FHIR_JSON}
    return jwe.encrypt_compact(header, plaintext, OctKey.import_key(b64url_decode(key)))


def _record_opening(session: Session, link: ShareLink, *, recipient: str,
                    request_id: str | None, now: dt.datetime) -> uuid.UUID:
    """The fetch in the citizen's audit chain and, under the citizen's key, who it was."""
    actor = Caller(role=RECIPIENT_ROLE, request_id=request_id)
    event_id = record_decision(
        session, actor=actor, citizen_id=link.citizen_id, section=OPENED_SECTION,
        entry_id=None, action=OPENED_ACTION,
        decision=Decision(permit=True, rule="share-link", related=True),
        context=RequestContext(account_id=None, client_id=None, request_id=request_id,
                               actor_label=RECIPIENT_ROLE),
        now=now)
    opening = ShareLinkOpening(id=event_id, link_id=link.id, citizen_id=link.citizen_id,
                               opened_at=now)
    opening.recipient = recipient
    session.add(opening)
    session.execute(
        update(ShareLink).where(ShareLink.id == link.id)
        .values(opened_count=ShareLink.opened_count + 1, last_opened_at=now)
        .execution_options(synchronize_session=False))
    return event_id


def open_manifest(session: Session, manifest_id: str, request: ManifestRequest, *,
                  lang: str, urls: Urls, location_token: Any,
                  request_id: str | None) -> dict[str, Any]:
    """The spec's manifest: one FHIR file, the IPS, embedded (or by `location` when the
    client's `embeddedLengthMax` is smaller). Commits."""
    now = clock_now()
    link = _live(session, manifest_id, now)
    if link.single_use:
        raise NotFound()  # a `U` link has no manifest: its URL is the file
    if link.has_passcode:
        _check_passcode(session, link, request.passcode, now)
    encrypted = _summary_jwe(session, link, lang=lang, request_id=request_id, now=now)
    event_id = _record_opening(session, link, recipient=request.recipient,
                               request_id=request_id, now=now)
    session.commit()
    entry: dict[str, Any] = {"contentType": FHIR_JSON, "lastUpdated": _iso(now),
                             "status": "can-change", "fhirVersion": "4.0.1"}
    if request.embedded_length_max is not None and len(encrypted) > request.embedded_length_max:
        entry["location"] = urls.location(location_token(link.id, event_id))
    else:
        entry["embedded"] = encrypted
    return {"files": [entry]}


def open_location(session: Session, link_id: uuid.UUID, *, lang: str,
                  request_id: str | None) -> str:
    """A manifest's `location` (signed, an hour at most): the file, fresh, while the link
    lives. The opening was logged with the manifest that handed the location out."""
    now = clock_now()
    link = session.scalars(select(ShareLink).where(ShareLink.id == link_id)).one_or_none()
    if link is None or status_of(link, now) != "active" or link.key_ct is None:
        raise NotFound()
    encrypted = _summary_jwe(session, link, lang=lang, request_id=request_id, now=now)
    session.commit()
    return encrypted


def open_direct_file(session: Session, manifest_id: str, *, recipient: str, lang: str,
                     request_id: str | None) -> str:
    """A `U` link's one file: served once. The spend, the key's wipe and the audit event are
    one transaction; of parallel fetches only the one whose UPDATE ends the link gets it."""
    now = clock_now()
    link = _live(session, manifest_id, now)
    if not link.single_use:
        raise NotFound()
    encrypted = _summary_jwe(session, link, lang=lang, request_id=request_id, now=now)
    spent = session.execute(
        update(ShareLink).where(ShareLink.id == link.id, _still_live(now))
        .values(spent_at=now, key_ct=None, passcode_hash=None)
        .execution_options(synchronize_session=False))
    if not spent.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        raise NotFound()
    _record_opening(session, link, recipient=recipient, request_id=request_id, now=now)
    session.commit()
    return encrypted


def recipients_of(session: Session, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names recipients stated, by the audit event of their fetch (the access log's
    question; an erased citizen's read as nothing)."""
    if not event_ids:
        return {}
    found: dict[uuid.UUID, str] = {}
    for opening in session.scalars(select(ShareLinkOpening).where(
            ShareLinkOpening.id.in_(event_ids))):
        name = opening.recipient
        if isinstance(name, str) and name:
            found[opening.id] = name
    return found


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

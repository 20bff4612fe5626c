"""Demo logins and clients (DESIGN.md "Demo data"), added to `seed demo`.

Demo passwords and client secrets are derived from the app's secret key and the login name
(HMAC), so a re-run prints the same identities without storing them anywhere; if the secret
key changed, the stored hashes are brought in line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import select

from auth.accounts import create_account
from auth.clients import create_client, ensure_first_party_public_client
from auth.credentials import CLIENT_SECRET_PREFIX, digest, digest_matches
from auth.models import Account, OAuthClient
from auth.passwords import hash_password, verify_password
from core.db import db
from registry.models import Facility

CITIZEN_LOGINS = ("adult-chronic", "parent", "stranger")

# demo role → (username, account role)
STAFF_LOGINS = {
    "family-doctor": ("bs.huong", "practitioner"),
    "other-doctor": ("bs.duc", "practitioner"),
    "vaccinator": ("dd.mai", "station"),
}

STATION_SCOPES = (
    "system/Patient.crs system/Immunization.crus system/ImmunizationRecommendation.rs"
)


def _clients() -> dict[str, dict[str, Any]]:
    return {
        "mobile": {
            "client_id": "phr-mobile",
            "name": "Sổ sức khỏe điện tử",
            "client_type": "public",
            "first_party": True,
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["vn.gov.phr.app:/oauth/callback"],
            "scopes": "openid profile offline_access patient/*.cruds".split(),
        },
        "portal": {
            "client_id": "phr-portal",
            "name": "Cổng sức khỏe người dân",
            "client_type": "public",
            "first_party": True,
            "grant_types": ["authorization_code", "refresh_token"],
            # The portal is served by this app (portal/): its callback follows the issuer.
            "redirect_uris": [str(current_app.config["OAUTH_ISSUER"]).rstrip("/") + "/callback"],
            "scopes": "openid profile offline_access patient/*.cruds".split(),
        },
        "clinic": {
            "client_id": "phr-clinic",
            "name": "Phần mềm phòng khám (thử nghiệm)",
            "client_type": "confidential",
            "first_party": False,
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["http://127.0.0.1:8100/oauth/callback"],
            "scopes": "openid profile offline_access user/*.cruds".split(),
        },
    }


def _derived(kind: str, name: str) -> bytes:
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(key, f"phr-demo\x00{kind}\x00{name}".encode(), hashlib.sha256).digest()


def demo_password(username: str) -> str:
    """A readable password (xxxx-xxxx-xxxx-xxxx) derived from the secret key and username."""
    text = base64.b32encode(_derived("password", username)).decode().lower()[:16]
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def demo_client_secret(client_id: str) -> str:
    raw = base64.urlsafe_b64encode(_derived("client-secret", client_id)).decode().rstrip("=")
    return CLIENT_SECRET_PREFIX + raw


def _ensure_password(account: Account, password: str) -> None:
    if not verify_password(account.password_hash, password):
        account.password_hash = hash_password(password)


def _ensure_account(*, username: str, role: str, **links: Any) -> tuple[Account, str, int]:
    session = db.session
    password = demo_password(username)
    if role == "citizen":
        existing = session.scalars(
            select(Account).where(Account.citizen_id == links["citizen_id"])
        ).one_or_none()
    else:
        existing = session.scalars(
            select(Account).where(Account.username == username)
        ).one_or_none()
    if existing is not None:
        _ensure_password(existing, password)
        return existing, password, 0
    account = create_account(
        session=session, role=role, password=password,
        username=None if role == "citizen" else username, **links,
    )
    return account, password, 1


def _ensure_client(spec: dict[str, Any], *, secret: str | None = None,
                   facility_id: uuid.UUID | None = None) -> int:
    session = db.session
    existing = session.get(OAuthClient, spec["client_id"])
    if existing is None:
        create_client(session=session, facility_id=facility_id, client_secret=secret, **spec)
        return 1
    if secret is not None and not digest_matches(secret, existing.client_secret_hash):
        existing.client_secret_hash = digest(secret)
    return 0


def seed_demo_accounts(identities: dict[str, Any]) -> int:
    """Add logins to the demo citizens and practitioners, a system client per station, and the
    mobile, portal and clinic clients; return how many rows were created."""
    created = 0
    for person in identities.get("citizens", []):
        if person.get("demo_role") not in CITIZEN_LOGINS:
            continue
        username = person["health_id"]
        _, password, new = _ensure_account(
            username=username, role="citizen", citizen_id=uuid.UUID(person["id"])
        )
        created += new
        person.update(username=username, password=password)

    for person in identities.get("practitioners", []):
        login = STAFF_LOGINS.get(person.get("demo_role", ""))
        if login is None:
            continue
        username, role = login
        links: dict[str, Any] = {"practitioner_id": uuid.UUID(person["id"])}
        if role == "station":
            links["facility_id"] = _station_id(identities, person.get("facility_code"))
        _, password, new = _ensure_account(username=username, role=role, **links)
        created += new
        person.update(username=username, password=password)

    for station in identities.get("stations", []):
        client_id = "station-" + station["facility_code"].lower()
        secret = demo_client_secret(client_id)
        facility = db.session.get(Facility, uuid.UUID(station["facility_id"]))
        created += _ensure_client(
            {
                "client_id": client_id,
                "name": facility.name if facility is not None else client_id,
                "client_type": "confidential",
                "grant_types": ["client_credentials"],
                "scopes": STATION_SCOPES.split(),
            },
            secret=secret,
            facility_id=facility.id if facility is not None else None,
        )
        station.update(client_id=client_id, client_secret=secret)

    clients = identities.setdefault("clients", {})
    for key, spec in _clients().items():
        secret = demo_client_secret(spec["client_id"]) if spec["client_type"] == "confidential" \
            else None
        created += _ensure_client(spec, secret=secret)
        if key == "portal":  # served again on another port: its new callback works too
            ensure_first_party_public_client(
                session=db.session, client_id=spec["client_id"], name=spec["name"],
                redirect_uri=spec["redirect_uris"][0], scopes=spec["scopes"])
        entry = {"client_id": spec["client_id"], "redirect_uri": spec["redirect_uris"][0],
                 "type": spec["client_type"], "scope": " ".join(spec["scopes"])}
        if secret:
            entry["client_secret"] = secret
        clients[key] = entry
    db.session.commit()
    return created


def _station_id(identities: dict[str, Any], facility_code: str | None) -> uuid.UUID | None:
    for station in identities.get("stations", []):
        if station.get("facility_code") == facility_code:
            return uuid.UUID(station["facility_id"])
    return None

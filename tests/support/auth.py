"""Real accounts, clients and tokens for end-to-end tests, through the real endpoints.

Typical use in a test (fixtures `app` and `client` from tests/conftest.py):

    from tests.support.auth import bearer, make_citizen, station_token, token_for

    tokens = token_for(client, app, role="citizen")            # a new citizen logs in
    client.get("/api/v1/me", headers=bearer(tokens))

    citizen_id = make_citizen(app)                              # or bring your own citizen
    mine = token_for(client, app, citizen=citizen_id, scopes="patient/Immunization.rs")
    doctor = token_for(client, app, role="practitioner")        # new practitioner + facility
    station = station_token(client, app)                        # client credentials

`token_for` creates the account (unless it exists), then runs the authorization code flow
with PKCE S256 exactly like a phone: GET /oauth/authorize, the login form (CSRF token parsed
from the HTML), the redirect with the code, POST /oauth/token. Each call costs two argon2
computations (~30 ms). Everything it creates is ordinary data: the `app` fixture empties the
database after the test.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from auth.accounts import create_account
from auth.clients import create_client
from core.db import db
from registry.reference.health_id import make_health_id
from registry.services import (
    create_facility,
    create_practitioner,
    find_citizen_by_health_id,
    register_citizen,
)

TEST_CLIENT_ID = "test-app"
TEST_REDIRECT_URI = "vn.gov.phr.test:/oauth/callback"
TEST_CLIENT_SCOPES = (
    "openid profile offline_access patient/*.cruds user/*.cruds"
)
TEST_PASSWORD = "correct horse battery staple"

DEFAULT_SCOPES = {
    "citizen": "openid profile offline_access patient/*.cruds",
    "practitioner": "openid profile offline_access user/*.cruds",
    "station": "openid profile offline_access user/*.cruds",
    "admin": "openid profile",
}
STATION_SCOPES = "system/Patient.crs system/Immunization.crus system/ImmunizationRecommendation.rs"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class ClientInfo:
    """A registered OAuth client as a test sees it."""

    client_id: str
    redirect_uri: str | None
    secret: str | None = None

    @property
    def public(self) -> bool:
        return self.secret is None


@dataclass(frozen=True)
class Login:
    """An account and the password it logs in with."""

    account_id: uuid.UUID
    role: str
    username: str
    password: str
    citizen_id: uuid.UUID | None = None
    practitioner_id: uuid.UUID | None = None
    facility_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Tokens:
    """A token response."""

    access_token: str
    scope: str
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    login: Login | None = None
    client: ClientInfo | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def bearer(token: Tokens | str) -> dict[str, str]:
    """The Authorization header for a token."""
    value = token.access_token if isinstance(token, Tokens) else token
    return {"Authorization": f"Bearer {value}"}


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def csrf_from(html: str | bytes) -> str:
    """The CSRF token of a login or approval page."""
    text = html.decode() if isinstance(html, bytes) else html
    match = _CSRF.search(text)
    if match is None:
        raise AssertionError("no csrf_token in the page")
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect's Location, one value each."""
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


# --- data ---------------------------------------------------------------------------------


def facility_code() -> str:
    """A unique test facility code. Digits only: a hex code once held "F32", the diagnosis
    the leak tests look for in response bodies."""
    return f"T-{secrets.randbelow(10**12):012d}"


def make_facility(app: Any, *, kind: str = "commune-health-station") -> uuid.UUID:
    with app.app_context():
        facility = create_facility(
            session=db.session, code=facility_code(), kind=kind,
            name="Cơ sở thử nghiệm", province_code="27", district_code="260",
            commune_code="09334",
        )
        db.session.commit()
        return facility.id


def make_citizen(
    app: Any,
    *,
    full_name: str = "Nguyễn Văn An",
    date_of_birth: dt.date = dt.date(1990, 5, 17),
    sex: str = "male",
) -> uuid.UUID:
    """A registered citizen with a random valid health ID."""
    with app.app_context():
        while True:
            health_id = make_health_id(province_code="001", date_of_birth=date_of_birth,
                                       sex=sex, serial=secrets.randbelow(1_000_000))
            if find_citizen_by_health_id(session=db.session, health_id=health_id) is None:
                break
        citizen = register_citizen(session=db.session, health_id=health_id,
                                   full_name=full_name, date_of_birth=date_of_birth, sex=sex)
        db.session.commit()
        return citizen.id


def health_id_of(app: Any, citizen_id: uuid.UUID) -> str:
    from registry.models import Citizen

    with app.app_context():
        return str(db.session.get(Citizen, citizen_id).health_id)


def make_practitioner(
    app: Any, *, facility: uuid.UUID | None = None, profession: str = "doctor",
    full_name: str = "Bác sĩ Thử Nghiệm",
) -> uuid.UUID:
    facility = facility or make_facility(app)
    with app.app_context():
        from registry.models import Facility

        practitioner = create_practitioner(
            session=db.session, full_name=full_name,
            practising_certificate=f"{secrets.randbelow(10**6):06d}/T-CCHN",
            profession=profession, facility=db.session.get(Facility, facility),
            started_on=dt.date(2020, 1, 1),
        )
        db.session.commit()
        return practitioner.id


def make_login(
    app: Any,
    *,
    role: str = "citizen",
    citizen: uuid.UUID | None = None,
    practitioner: uuid.UUID | None = None,
    facility: uuid.UUID | None = None,
    username: str | None = None,
    password: str = TEST_PASSWORD,
) -> Login:
    """An account of `role`, creating the citizen / practitioner / facility it needs."""
    if role == "citizen":
        citizen = citizen or make_citizen(app)
    elif role == "practitioner":
        practitioner = practitioner or make_practitioner(app, facility=facility)
    elif role == "station":
        facility = facility or make_facility(app)
        practitioner = practitioner or make_practitioner(app, facility=facility,
                                                         profession="nurse")
    if role != "citizen":
        username = username or f"{role}.{secrets.token_hex(4)}"
    with app.app_context():
        account = create_account(
            session=db.session, role=role, password=password, citizen_id=citizen,
            username=username,
            practitioner_id=practitioner if role in ("practitioner", "station") else None,
            facility_id=facility if role == "station" else None,
        )
        db.session.commit()
        account_id = account.id
    login_name = health_id_of(app, citizen) if citizen else str(username)
    return Login(account_id=account_id, role=role, username=login_name, password=password,
                 citizen_id=citizen, practitioner_id=practitioner,
                 facility_id=facility if role == "station" else None)


def make_client(
    app: Any,
    *,
    client_id: str | None = None,
    public: bool = True,
    first_party: bool = True,
    scopes: str = TEST_CLIENT_SCOPES,
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    redirect_uri: str | None = TEST_REDIRECT_URI,
    facility: uuid.UUID | None = None,
    name: str = "Ứng dụng thử nghiệm",
) -> ClientInfo:
    """Register a client through the same service `flask auth create-client` uses."""
    with app.app_context():
        from auth.models import OAuthClient

        if client_id and (existing := db.session.get(OAuthClient, client_id)) is not None:
            if existing.is_public:
                return ClientInfo(client_id, redirect_uri)
            raise AssertionError("a confidential client's secret is shown once; use a new id")
        client, secret = create_client(
            session=db.session, name=name, client_type="public" if public else "confidential",
            grant_types=grant_types, redirect_uris=[redirect_uri] if redirect_uri else [],
            scopes=scopes.split(), first_party=first_party, facility_id=facility,
            client_id=client_id,
        )
        db.session.commit()
        return ClientInfo(client.client_id, redirect_uri, secret)


def shared_client(app: Any) -> ClientInfo:
    """The shared public, first-party test client (created on first use in a test)."""
    return make_client(app, client_id=TEST_CLIENT_ID)


# --- flows ----------------------------------------------------------------------------------


def authorize_url(
    oauth_client: ClientInfo,
    *,
    scope: str,
    challenge: str | None,
    state: str = "st-1",
    method: str | None = "S256",
    redirect_uri: str | None = None,
    **extra: str,
) -> str:
    params = {"response_type": "code", "client_id": oauth_client.client_id,
              "redirect_uri": redirect_uri or oauth_client.redirect_uri, "scope": scope,
              "state": state}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    params.update(extra)
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def submit_login(http: Any, url: str, *, username: str, password: str,
                 csrf: str | None = None, **headers: str) -> Any:
    """GET the login page (for its CSRF token, unless given) and POST the form."""
    if csrf is None:
        page = http.get(url)
        assert page.status_code == 200, page.get_data(as_text=True)
        csrf = csrf_from(page.data)
    return http.post(url, data={"csrf_token": csrf, "action": "login", "username": username,
                                "password": password}, headers=headers)


def approve(http: Any, url: str, page_html: bytes, *, decision: str = "approve") -> Any:
    """Answer the approval screen of a third-party client."""
    return http.post(url, data={"csrf_token": csrf_from(page_html), "action": "consent",
                                "decision": decision})


def code_for(
    http: Any, oauth_client: ClientInfo, login: Login, *, scope: str,
    state: str = "st-1", **extra: str,
) -> tuple[str, str]:
    """Log in through the form and return (code, PKCE verifier)."""
    verifier, challenge = pkce_pair()
    url = authorize_url(oauth_client, scope=scope, challenge=challenge, state=state, **extra)
    response = submit_login(http, url, username=login.username, password=login.password)
    if response.status_code == 200 and b'name="decision"' in response.data:
        response = approve(http, url, response.data)
    assert response.status_code == 302, response.get_data(as_text=True)
    params = query_of(response.headers["Location"])
    assert params.get("state") == state, params
    assert "code" in params, params
    return params["code"], verifier


def exchange(http: Any, oauth_client: ClientInfo, code: str, verifier: str | None,
             **extra: str) -> Any:
    """POST the code to /oauth/token (client auth as the client type requires)."""
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": oauth_client.redirect_uri, "client_id": oauth_client.client_id}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)
    if oauth_client.secret:
        data["client_secret"] = oauth_client.secret
    return http.post("/oauth/token", data=data)


def refresh(http: Any, oauth_client: ClientInfo, refresh_token: str, **extra: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": oauth_client.client_id}
    if oauth_client.secret:
        data["client_secret"] = oauth_client.secret
    data.update(extra)
    return http.post("/oauth/token", data=data)


def as_tokens(body: dict[str, Any], *, login: Login | None = None,
              client: ClientInfo | None = None) -> Tokens:
    return Tokens(access_token=body["access_token"], scope=body.get("scope", ""),
                  expires_in=body["expires_in"], refresh_token=body.get("refresh_token"),
                  id_token=body.get("id_token"), login=login, client=client, raw=body)


def token_for(
    http: Any,
    app: Any,
    *,
    role: str = "citizen",
    citizen: uuid.UUID | None = None,
    practitioner: uuid.UUID | None = None,
    facility: uuid.UUID | None = None,
    scopes: str | None = None,
    login: Login | None = None,
    oauth_client: ClientInfo | None = None,
) -> Tokens:
    """A real token for a (new or given) account, through the login form and PKCE.

    `role` "citizen" (default), "practitioner", "station" (station staff) or "admin";
    `citizen`/`practitioner`/`facility` link the account to existing records; `scopes`
    defaults to everything the role may hold plus openid, profile and offline_access.
    """
    if login is None:
        login = make_login(app, role=role, citizen=citizen, practitioner=practitioner,
                           facility=facility)
    oauth_client = oauth_client or shared_client(app)
    scope = scopes if scopes is not None else DEFAULT_SCOPES[login.role]
    code, verifier = code_for(http, oauth_client, login, scope=scope)
    response = exchange(http, oauth_client, code, verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    return as_tokens(response.get_json(), login=login, client=oauth_client)


def revoke_access_token(app: Any, tokens: Tokens) -> None:
    """Revoke a token in the database itself, as a revocation elsewhere would (no request to
    this app: a worker that remembers the token's principal must learn it from the probe)."""
    from sqlalchemy import func, update

    from auth.credentials import digest
    from auth.models import OAuthToken

    with app.app_context():
        db.session.execute(update(OAuthToken).where(
            OAuthToken.access_token_hash == digest(tokens.access_token)
        ).values(revoked_at=func.now()))
        db.session.commit()


def station_client(app: Any, *, facility: uuid.UUID | None = None,
                   scopes: str = STATION_SCOPES) -> tuple[ClientInfo, uuid.UUID]:
    """A confidential client-credentials client of a (new or given) facility."""
    facility = facility or make_facility(app)
    info = make_client(app, public=False, first_party=False, scopes=scopes,
                       grant_types=("client_credentials",), redirect_uri=None,
                       facility=facility, name="Hệ thống trạm y tế")
    return info, facility


def station_token(
    http: Any, app: Any, *, facility: uuid.UUID | None = None, scopes: str | None = None,
    oauth_client: ClientInfo | None = None,
) -> Tokens:
    """A facility system's token (client credentials; role "station", `system/` scopes)."""
    if oauth_client is None:
        oauth_client, _ = station_client(app, facility=facility)
    data = {"grant_type": "client_credentials"}
    if scopes is not None:
        data["scope"] = scopes
    response = http.post("/oauth/token", data=data,
                         auth=(oauth_client.client_id, oauth_client.secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    return as_tokens(response.get_json(), client=oauth_client)


class MovableClock:
    """A clock for `app.config["CLOCK"]`: starts now, moves only when told."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def install_clock(app: Any) -> MovableClock:
    """Make the auth package read time from a clock the test moves."""
    clock = MovableClock()
    app.config["CLOCK"] = clock
    return clock

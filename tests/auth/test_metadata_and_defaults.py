"""Discovery metadata, and every Authlib default that is not ours, overridden and checked."""

from __future__ import annotations

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc.jwk import ECKey

from auth.keys import load_signing_key
from auth.server import (
    AuthorizationCodeGrant,
    IntrospectionEndpoint,
    RefreshTokenGrant,
    RevocationEndpoint,
    S256CodeChallenge,
)
from tests.support.auth import refresh, station_token, token_for


def test_discovery_metadata_and_jwks(app, client):
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    body = response.get_json()
    AuthorizationServerMetadata(body).validate()
    issuer = app.config["OAUTH_ISSUER"].rstrip("/")
    assert body["issuer"] == issuer
    assert body["token_endpoint"] == issuer + "/oauth/token"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert set(body["grant_types_supported"]) == {
        "authorization_code", "refresh_token", "client_credentials"
    }
    assert "none" in body["revocation_endpoint_auth_methods_supported"]
    assert "none" not in body["introspection_endpoint_auth_methods_supported"]
    assert body["authorization_response_iss_parameter_supported"] is True

    body = client.get("/.well-known/openid-configuration").get_json()
    assert body["id_token_signing_alg_values_supported"] == ["ES256"]
    assert body["userinfo_endpoint"].endswith("/oauth/userinfo")
    assert body["jwks_uri"].endswith("/oauth/jwks")
    assert body["subject_types_supported"] == ["public"]

    keys = client.get("/oauth/jwks").get_json()["keys"]
    assert len(keys) == 1
    jwk = keys[0]
    assert "d" not in jwk  # never the private part
    assert jwk["kty"] == "EC"
    assert jwk["crv"] == "P-256"
    assert jwk["alg"] == "ES256"
    signing = load_signing_key(app.config["OAUTH_SIGNING_KEY_FILE"])
    assert jwk["kid"] == signing.kid
    assert ECKey.import_key(jwk).thumbprint() == signing.thumbprint()


def test_access_tokens_live_at_most_15_minutes_for_every_grant(app, client):
    app.config["OAUTH_ACCESS_TOKEN_SECONDS"] = 86400  # a misconfiguration is capped
    user = token_for(client, app)
    system = station_token(client, app)
    rotated = refresh(client, user.client, user.refresh_token).get_json()
    assert user.expires_in <= 900
    assert system.expires_in <= 900
    assert rotated["expires_in"] <= 900


def test_refresh_rotation_is_on():
    assert RefreshTokenGrant.INCLUDE_NEW_REFRESH_TOKEN is True


def test_pkce_is_s256_only_and_required():
    assert S256CodeChallenge.SUPPORTED_CODE_CHALLENGE_METHOD == ["S256"]
    assert "plain" not in S256CodeChallenge.CODE_CHALLENGE_METHODS


def test_endpoint_client_authentication():
    assert "none" in RevocationEndpoint.CLIENT_AUTH_METHODS  # the phone can log out
    assert "none" not in IntrospectionEndpoint.CLIENT_AUTH_METHODS
    assert "none" in AuthorizationCodeGrant.TOKEN_ENDPOINT_AUTH_METHODS


def test_tokens_are_stored_as_digests_only(app, client):
    from sqlalchemy import text

    from core.db import db

    tokens = token_for(client, app)
    with app.app_context():
        dump = []
        for table in ("oauth_tokens", "oauth_authorization_codes", "accounts", "oauth_clients"):
            for row in db.session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                dump.extend(repr(value) for value in row)
    everything = " ".join(dump)
    assert tokens.access_token not in everything
    assert tokens.refresh_token not in everything
    assert tokens.access_token[7:] not in everything
    assert tokens.login.password not in everything
    assert "$argon2id$" in everything

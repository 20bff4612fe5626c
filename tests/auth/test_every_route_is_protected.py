"""Every /api operation in openapi.yaml (and /oauth/userinfo) refuses a request without a token,
and one with a token that lacks its scope.

Generic on purpose: operations added later are covered as they appear in the spec. Path
parameters get a value of their schema's enum, else a random UUID; bodies are `{}`.
An operation whose `security` lists the `bearer` scheme (`security: [{bearer: []}]`) is
documented as "any valid token, whatever its scopes" (e.g. GET /api/v1/me) and is only
checked without a token; every other one must refuse tokens holding no clinical scope (only
`openid`, or only `profile` where the operation names `openid`, as /oauth/userinfo does).
"""

from __future__ import annotations

import functools
import re
import uuid

from tests.support.auth import bearer, make_client, make_facility, station_token, token_for
from tests.test_openapi_routes import HTTP_METHODS
from tests.test_openapi_routes import load_spec as _load_spec

load_spec = functools.cache(_load_spec)

_PARAM = re.compile(r"\{([^}]+)\}")


def _resolve(spec, item):
    ref = item.get("$ref") if isinstance(item, dict) else None
    if not ref:
        return item
    node = spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _protected_operations(spec):
    for path, item in spec["paths"].items():
        if not (path == "/api" or path.startswith("/api/") or path == "/oauth/userinfo"):
            continue
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method in HTTP_METHODS:
                params = [_resolve(spec, p) for p in shared + operation.get("parameters", [])]
                yield path, method, operation, params


def _any_token(operation):
    return any("bearer" in requirement for requirement in operation.get("security") or [])


def _satisfies(scopes, operation):
    """Whether a token with `scopes` meets a requirement the operation spells out."""
    for requirement in operation.get("security") or []:
        named = requirement.get("oauth2")
        if named and set(named) <= set(scopes.split()):
            return True
    return False


def _concrete(path, params):
    def value(match):
        name = match.group(1)
        for param in params:
            if param.get("in") == "path" and param.get("name") == name:
                schema = param.get("schema", {})
                if schema.get("enum"):
                    return str(schema["enum"][0])
        return str(uuid.uuid4())

    return _PARAM.sub(value, path)


def _call(client, method, path, headers=None):
    kwargs = {"method": method.upper(), "headers": headers or {}}
    if method in ("post", "put", "patch"):
        kwargs["json"] = {}
    return client.open(path, **kwargs)


def test_spec_lists_protected_operations():
    operations = list(_protected_operations(load_spec()))
    assert ("/api/v1/me", "get") in {(path, method) for path, method, _, _ in operations}


def test_no_operation_answers_without_a_token(app, client):
    for path, method, _, params in _protected_operations(load_spec()):
        response = _call(client, method, _concrete(path, params))
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.mimetype == "application/problem+json", (method, path)
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="phr"')


def test_no_operation_answers_a_token_without_its_scope(app, client):
    facility = make_facility(app)
    station_system = make_client(app, public=False, first_party=False, facility=facility,
                                 grant_types=("client_credentials",), redirect_uri=None,
                                 scopes="system/Organization.r")
    holders = {
        "citizen": token_for(client, app, role="citizen", scopes="openid"),
        "citizen without openid": token_for(client, app, role="citizen", scopes="profile"),
        "practitioner": token_for(client, app, role="practitioner", scopes="openid"),
        "station system": station_token(client, app, oauth_client=station_system),
    }
    checked = 0
    for path, method, operation, params in _protected_operations(load_spec()):
        if _any_token(operation):
            continue
        url = _concrete(path, params)
        for who, tokens in holders.items():
            if _satisfies(tokens.scope, operation):
                continue
            response = _call(client, method, url, headers=bearer(tokens))
            assert not 200 <= response.status_code < 400, (who, method, path,
                                                           response.status_code)
            checked += 1
    assert checked >= len(holders)  # /oauth/userinfo at least

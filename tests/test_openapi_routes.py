"""openapi.yaml and the app's routes describe the same surface, both ways."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
# Routes that exist only when a test or the benchmark registers them.
IGNORED_PREFIXES = ("/static", "/_probe", "/_logprobe", "/_bench")


def load_spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def app_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(IGNORED_PREFIXES):
            continue
        path = re.sub(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operations.add((method.lower(), path))
    return operations


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_spec_is_openapi_3_1():
    assert load_spec()["openapi"].startswith("3.1")


def test_every_app_route_is_in_the_spec_and_back(app):
    in_app = app_operations(app)
    in_spec = spec_operations(load_spec())
    assert in_app - in_spec == set(), "routes missing from openapi.yaml"
    assert in_spec - in_app == set(), "openapi.yaml documents routes the app does not serve"


def test_every_operation_has_an_id_and_responses():
    spec = load_spec()
    ids = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            assert operation.get("operationId"), f"{method} {path} has no operationId"
            assert operation.get("responses"), f"{method} {path} has no responses"
            ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))

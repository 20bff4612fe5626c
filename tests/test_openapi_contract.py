"""openapi.yaml is a contract that holds: its examples, its conventions, its mirror of the
section schemas, and the ContractClient that checks every exchange of the test suite with it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask, Response, jsonify
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from marshmallow import fields, validate

from core.errors import register_error_handlers
from tests.support.contract import (
    HTTP_METHODS,
    SPEC_PATH,
    Contract,
    ContractClient,
    ContractViolation,
    load_contract,
)

# Keywords whose values are subschemas (JSON Schema 2020-12), by the shape of their value.
_ONE_SCHEMA = ("additionalProperties", "items", "not", "if", "then", "else", "contains",
               "propertyNames", "unevaluatedProperties", "unevaluatedItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs")


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Refuses a key given twice in one mapping (PyYAML silently keeps the last one)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


def operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


# The document ----------

def test_spec_has_no_duplicate_keys():
    # Several people edit openapi.yaml; a key added twice would silently replace the first.
    yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506


def test_every_local_reference_resolves(contract: Contract):
    refs = list(_refs(contract.spec, ""))
    assert refs
    for ref, where in refs:
        assert ref.startswith("#/"), f"{where}: {ref} is not local"
        contract.resolve({"$ref": ref}, where)  # raises KeyError when the target is missing


def _refs(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"], where
        for key, value in node.items():
            yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{where}/{index}")


def test_no_keyword_is_null(contract: Contract):
    # `{description: a, b}` in YAML flow style silently becomes {description: a, "b": null}.
    assert list(_null_keys(contract.spec, "")) == []


def test_every_component_schema_is_valid_json_schema(contract: Contract):
    for name, schema in contract.spec["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            pytest.fail(f"components/schemas/{name}: {error.message}")


def _null_keys(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("example", "examples", "enum", "const", "default"):
                continue
            if value is None:
                yield f"{where}/{key}"
            yield from _null_keys(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _null_keys(value, f"{where}/{index}")


# Examples ----------

def example_failures(contract: Contract) -> tuple[int, list[str]]:
    """Validate every example of the spec against its schema: (how many, what failed)."""
    checked = 0
    failures: list[str] = []

    def check(value: Any, schema_pointer: str, where: str) -> None:
        nonlocal checked
        checked += 1
        for error in contract.errors(value, schema_pointer)[:3]:
            failures.append(f"{where}: at {error.json_path}: {error.message[:200]}")

    def named_examples(examples: Mapping[str, Any], where: str) -> Iterator[tuple[Any, str]]:
        for name, raw in examples.items():
            example, _ = contract.resolve(raw, f"{where}/{name}")
            if "value" in example:
                yield example["value"], f"{where}/{name}"

    def media(node: Mapping[str, Any], pointer: str) -> None:
        for mimetype, media_type in (node.get("content") or {}).items():
            at = f"{pointer}/content/{mimetype.replace('/', '~1')}"
            if "schema" not in media_type:
                continue
            schema(media_type["schema"], at + "/schema")
            if "example" in media_type:
                check(media_type["example"], at + "/schema", at + "/example")
            for value, where in named_examples(media_type.get("examples") or {}, at + "/examples"):
                check(value, at + "/schema", where)

    def parameter(node: Mapping[str, Any], pointer: str) -> None:
        if "example" in node:
            check(node["example"], pointer + "/schema", pointer + "/example")
        for value, where in named_examples(node.get("examples") or {}, pointer + "/examples"):
            check(value, pointer + "/schema", where)

    def schema(node: Any, pointer: str) -> None:
        if not isinstance(node, Mapping):
            return
        for value in node.get("examples") or []:
            check(value, pointer, pointer + "/examples")
        if "example" in node:
            check(node["example"], pointer, pointer + "/example")
        for key in _ONE_SCHEMA:
            if key in node:
                schema(node[key], f"{pointer}/{key}")
        for key in _SCHEMA_LISTS:
            for index, sub in enumerate(node.get(key) or []):
                schema(sub, f"{pointer}/{key}/{index}")
        for key in _SCHEMA_MAPS:
            for name, sub in (node.get(key) or {}).items():
                schema(sub, f"{pointer}/{key}/{name.replace('/', '~1')}")

    spec = contract.spec
    components = spec.get("components", {})
    for name, node in components.get("schemas", {}).items():
        schema(node, f"/components/schemas/{name}")
    for name, node in components.get("parameters", {}).items():
        parameter(node, f"/components/parameters/{name}")
        schema(node.get("schema"), f"/components/parameters/{name}/schema")
    for name, node in components.get("responses", {}).items():
        media(node, f"/components/responses/{name}")
    for name, node in components.get("requestBodies", {}).items():
        media(node, f"/components/requestBodies/{name}")
    for path, item in spec["paths"].items():
        base = "/paths/" + path.replace("~", "~0").replace("/", "~1")
        for index, raw in enumerate(item.get("parameters", [])):
            if "$ref" not in raw:
                parameter(raw, f"{base}/parameters/{index}")
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation, at = item[method], f"{base}/{method}"
            for index, raw in enumerate(operation.get("parameters", [])):
                if "$ref" not in raw:
                    parameter(raw, f"{at}/parameters/{index}")
            if "requestBody" in operation and "$ref" not in operation["requestBody"]:
                media(operation["requestBody"], at + "/requestBody")
            for status, response in operation.get("responses", {}).items():
                if "$ref" not in response:
                    media(response, f"{at}/responses/{status}")
    return checked, failures


def test_every_example_validates_against_its_schema(contract: Contract):
    checked, failures = example_failures(contract)
    assert checked >= 20, "the walk found (almost) no examples: is it still looking?"
    assert failures == []


def test_the_example_walk_finds_wrong_examples():
    schema = {"type": "object", "properties": {"n": {"type": "integer", "examples": ["one"]}}}
    media = {"application/json": {"schema": schema, "examples": {"a": {"value": {"n": "two"}}}}}
    spec = {"openapi": "3.1.0", "components": {},
            "paths": {"/x": {"get": {"responses": {"200": {"content": media}}}}}}
    checked, failures = example_failures(Contract(spec))
    assert checked == 2
    assert len(failures) == 2
    assert "'two' is not of type 'integer'" in failures[0] + failures[1]


def test_every_named_example_is_used(contract: Contract):
    named = set(contract.spec.get("components", {}).get("examples", {}))
    used = {ref.removeprefix("#/components/examples/") for ref, _ in _refs(contract.spec, "")
            if ref.startswith("#/components/examples/")}
    assert named - used == set(), "examples no schema checks (reference them from a media type)"


# Conventions ----------

def test_every_api_operation_needs_a_token_and_documents_401(contract: Contract):
    default_security = contract.spec.get("security")
    for path, method, operation in operations(contract.spec):
        if not path.startswith("/api/"):
            continue
        security = operation.get("security", default_security)
        assert security, f"{method.upper()} {path} must require a token"
        schemes = contract.spec["components"]["securitySchemes"]
        for requirement in security:
            assert set(requirement) <= set(schemes), f"{method.upper()} {path}: unknown scheme"
        assert "401" in operation["responses"], f"{method.upper()} {path} must document 401"


def test_every_operation_taking_an_idempotency_key_documents_422(contract: Contract):
    found = 0
    for path, method, operation in operations(contract.spec):
        names = _header_parameters(contract, path, method)
        if "idempotency-key" in names:
            found += 1
            assert "422" in operation["responses"], f"{method.upper()} {path} must document 422"
    assert found >= 2


def test_every_operation_with_a_body_documents_the_body_problems(contract: Contract):
    for path, method, operation in operations(contract.spec):
        body = operation.get("requestBody")
        if not path.startswith("/api/") or body is None:
            continue
        documented = set(operation["responses"])
        missing = {"400", "413", "415", "422"} - documented
        assert not missing, f"{method.upper()} {path} lacks {sorted(missing)}"


def test_conditional_operations_document_their_preconditions(contract: Contract):
    for path, method, operation in operations(contract.spec):
        headers = _header_parameters(contract, path, method)
        responses = operation["responses"]
        if "if-match" in headers:
            assert {"412", "428"} <= set(responses), f"{method.upper()} {path}"
        if "if-none-match" in headers:
            assert "304" in responses, f"{method.upper()} {path}"


def _header_parameters(contract: Contract, path: str, method: str) -> set[str]:
    route = next(r for r in contract.routes if r.template == path)
    operation = contract.operation(route, method)
    assert operation is not None
    return {p["name"].lower() for p, _ in operation.parameters if p["in"] == "header"}


# The record API mirrors the code ----------

def _schemas(contract: Contract) -> Mapping[str, Any]:
    return contract.spec["components"]["schemas"]


def _enum(node: Mapping[str, Any]) -> list[Any] | None:
    if "enum" in node:
        return [v for v in node["enum"] if v is not None]
    if "const" in node:
        return [node["const"]]
    return None


def _expected_property(field: fields.Field) -> dict[str, Any]:
    """What the spec must say of a marshmallow field: enum, lengths, ranges, formats."""
    expected: dict[str, Any] = {}
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            expected["enum"] = list(validator.choices)
        elif isinstance(validator, validate.Length):
            if validator.min is not None and validator.min > 0:
                expected["min"] = validator.min
            if validator.max is not None:
                expected["max"] = validator.max
        elif isinstance(validator, validate.Range):
            expected["minimum"], expected["maximum"] = validator.min, validator.max
        elif isinstance(validator, validate.Regexp):
            expected["pattern"] = validator.regex.pattern
    formats = {fields.Date: "date", fields.AwareDateTime: "date-time", fields.UUID: "uuid"}
    for kind, name in formats.items():
        if isinstance(field, kind):
            expected["format"] = name
    return expected


def _actual_property(contract: Contract, node: Mapping[str, Any], at: str) -> dict[str, Any]:
    resolved, _ = contract.resolve(node, at)
    if "anyOf" in resolved:  # `{anyOf: [X, null]}`
        resolved, _ = contract.resolve(resolved["anyOf"][0], at)
    actual: dict[str, Any] = {}
    if _enum(resolved) is not None:
        actual["enum"] = _enum(resolved)
    for key, name in (("minLength", "min"), ("maxLength", "max"), ("minItems", "min"),
                      ("maxItems", "max"), ("minimum", "minimum"), ("maximum", "maximum"),
                      ("pattern", "pattern"), ("format", "format")):
        if key in resolved and not (name == "min" and resolved[key] == 0):
            actual[name] = resolved[key]
    return actual


SECTION_SCHEMA_NAMES = {
    "allergies": "Allergy", "conditions": "Condition", "encounters": "Encounter",
    "observations": "Observation", "medications": "Medication",
    "immunizations": "Immunization", "lab-results": "LabResult",
    "family-history": "FamilyHistory", "history": "History", "examinations": "Examination",
}


@pytest.mark.parametrize("section", sorted(SECTION_SCHEMA_NAMES))
def test_section_bodies_mirror_the_section_schemas(contract: Contract, section: str):
    from ehr.section_schemas import SECTION_SCHEMAS

    schema = SECTION_SCHEMAS[section]()
    declared = SECTION_SCHEMAS[section]._declared_fields  # validators as written, not wrapped
    name = SECTION_SCHEMA_NAMES[section]
    data, patch = _schemas(contract)[f"{name}Data"], _schemas(contract)[f"{name}Patch"]
    envelope = {"sensitivity", "source"}
    assert set(data["properties"]) - envelope == set(schema.fields)
    assert set(data["required"]) == {n for n, f in schema.fields.items() if f.required}
    assert data["additionalProperties"] is False
    assert patch["additionalProperties"] is False
    assert set(patch["properties"]) == set(data["properties"])
    assert "required" not in patch
    for field_name, field in declared.items():
        where = f"{name}Data.{field_name}"
        expected = _expected_property(field)
        if isinstance(field, fields.List):
            inner = _expected_property(field.inner)
            assert inner == {}, f"{where}: items are codes, checked by the service"
        assert _actual_property(contract, data["properties"][field_name], where) == expected, where
        patched = _actual_property(contract, patch["properties"][field_name], where)
        assert patched == expected, f"{name}Patch.{field_name}"


def test_the_batch_item_is_an_immunization_body_with_two_keys_more(contract: Contract):
    schemas = _schemas(contract)
    item, body = schemas["BatchImmunizationItem"], schemas["ImmunizationData"]
    assert set(item["properties"]) == set(body["properties"]) | {"client_item_id", "citizen_id"}
    assert set(item["required"]) == set(body["required"]) | {"client_item_id", "citizen_id"}
    for name, node in body["properties"].items():
        assert _without_description(item["properties"][name]) == _without_description(node), name
    batch = contract.spec["paths"]["/api/v1/immunizations/batch"]["post"]
    items = schemas["ImmunizationBatch"]["properties"]["items"]
    assert batch["x-batch-items"]["schema"] == items["items"]


def _without_description(node: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != "description"}


def test_enumerations_mirror_the_code(contract: Contract):
    from ehr.record_models import SOURCES
    from ehr.section_schemas import SECTION_SCHEMAS, SENSITIVITY_LABELS
    from ehr.views import ENTRY_FIELDS
    from registry.models import SEXES
    from registry.reference.observations import observation_kinds
    from registry.reference.schedule import DoseStatus, NotCountedReason

    schemas = _schemas(contract)
    assert schemas["Section"]["enum"] == list(SECTION_SCHEMAS)
    # Spelt out in the path parameter too, for tools that take a value from a parameter's enum.
    section_parameter = contract.spec["components"]["parameters"]["Section"]["schema"]
    assert section_parameter["enum"] == list(SECTION_SCHEMAS)
    assert schemas["Sensitivity"]["enum"] == list(SENSITIVITY_LABELS)
    assert schemas["EntrySource"]["enum"] == list(SOURCES)
    assert schemas["DoseStatus"]["enum"] == [str(s) for s in DoseStatus]
    assert set(schemas["ObservationData"]["properties"]["kind"]["enum"]) == (
        set(observation_kinds()) | {"blood-pressure"})
    assert schemas["CitizenCreate"]["properties"]["sex"]["enum"] == list(SEXES)
    assert list(schemas["EntryBase"]["properties"]) == list(ENTRY_FIELDS)
    assert schemas["EntryField"]["enum"] == list(ENTRY_FIELDS)
    not_counted = schemas["ScheduledDose"]["properties"]["not_counted"]["items"]
    assert not_counted["properties"]["reason"]["enum"] == [str(r) for r in NotCountedReason]


def test_citizen_bodies_mirror_the_citizen_schemas(contract: Contract):
    from registry.schemas import AddressSchema, CitizenCreateSchema, CitizenUpdateSchema

    schemas = _schemas(contract)
    for spec_name, schema in (("CitizenCreate", CitizenCreateSchema()),
                              ("CitizenUpdate", CitizenUpdateSchema()),
                              ("Address", AddressSchema())):
        node = schemas[spec_name]
        assert set(node["properties"]) == set(schema.fields), spec_name
        required = {n for n, f in schema.fields.items() if f.required and not schema.partial}
        assert set(node.get("required", [])) == required, spec_name
        assert node["additionalProperties"] is False
        for field_name, field in schema.fields.items():
            nullable = _nullable(contract.resolve(node["properties"][field_name], "")[0])
            assert nullable == field.allow_none, f"{spec_name}.{field_name}: null"


def _nullable(node: Mapping[str, Any]) -> bool:
    kinds = node.get("type")
    return ("null" in kinds if isinstance(kinds, list) else kinds == "null") or (
        None in node.get("enum", [])) or any(_nullable(n) for n in node.get("anyOf", []))


# The ContractClient ----------

VACCINES = {
    "source": {"source": "Circular 10/2024/TT-BYT", "version": "2024-08-01"},
    "items": [{"code": "BCG", "name_vi": "Vắc xin phòng lao (BCG)",
               "name_en": "BCG vaccine (tuberculosis)", "name": "Vắc xin phòng lao (BCG)",
               "antigens": ["bcg"], "in_national_programme": True}],
}
CITIZEN = {"id": "4c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f", "full_name": "Phạm Văn Thắng",
           "date_of_birth": "1961-03-14", "sex": "male", "erased": False}
CITIZEN_PATH = "/api/v1/citizens/4c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"


def _json(payload: Any, status: int = 200, **headers: str) -> Response:
    response = jsonify(payload)
    response.status_code = status
    response.headers.update(headers)
    return response


def _problem(status: int, **changes: Any) -> Response:
    body = {"type": "urn:phr-vn:problem:x", "title": "-", "status": status, "detail": "-",
            "request_id": "r-1", **changes}
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


@pytest.fixture
def fake_app() -> Flask:
    """Routes at documented paths whose answers each test chooses (`behaviour`)."""
    app = Flask(__name__)
    register_error_handlers(app)
    app.config["behaviour"] = {}
    app.test_client_class = ContractClient

    def answer(name: str) -> Response:
        return app.config["behaviour"][name]()

    app.add_url_rule("/api/v1/vaccines", "vaccines", lambda: answer("vaccines"))
    app.add_url_rule("/api/v1/citizens/lookup", "lookup", lambda: answer("lookup"),
                     methods=["POST"])
    app.add_url_rule("/api/v1/citizens/<citizen_id>", "citizen", lambda citizen_id: answer(
        "citizen"), methods=["GET", "DELETE"])
    app.add_url_rule("/api/v1/citizens/<citizen_id>/<section>", "section",
                     lambda citizen_id, section: answer("section"), methods=["GET"])
    app.add_url_rule("/api/v1/immunizations/batch", "batch", lambda: answer("batch"),
                     methods=["POST"])
    app.add_url_rule("/_probe/anything", "probe", lambda: ("teapot", 418))
    app.add_url_rule("/api/_probe/anything", "api_probe", lambda: ("teapot", 418))
    app.add_url_rule("/not-in-the-spec", "stray", lambda: "hello")
    return app


def _behave(app: Flask, **answers: Any) -> None:
    app.config["behaviour"].update(answers)


def test_a_response_that_keeps_the_contract_passes(fake_app: Flask):
    _behave(fake_app, vaccines=lambda: _json(VACCINES, ETag='"abc"'))
    response = fake_app.test_client().get("/api/v1/vaccines")
    assert response.status_code == 200
    assert response.get_json() == VACCINES  # the body is still readable after the check


def test_a_body_off_its_schema_is_caught(fake_app: Flask):
    wrong = {**VACCINES, "items": [{**VACCINES["items"][0], "name": 5}]}
    _behave(fake_app, vaccines=lambda: _json(wrong, ETag='"abc"'))
    with pytest.raises(ContractViolation, match=r"\$\.items\[0\]\.name: 5 is not of type"):
        fake_app.test_client().get("/api/v1/vaccines")


def test_an_undocumented_property_is_caught(fake_app: Flask):
    leaky = {**CITIZEN, "health_id": "027061104528"}  # a brief view must not grow identifiers
    _behave(fake_app, lookup=lambda: _json(leaky))
    with pytest.raises(ContractViolation, match="health_id"):
        fake_app.test_client().post("/api/v1/citizens/lookup",
                                    json={"health_id": "027061104528"})


def test_an_undocumented_status_is_caught(fake_app: Flask):
    _behave(fake_app, vaccines=lambda: _json(VACCINES, 201, ETag='"abc"'))
    with pytest.raises(ContractViolation, match=r"answered 201, which it does not document"):
        fake_app.test_client().get("/api/v1/vaccines")


def test_a_wrong_content_type_is_caught(fake_app: Flask):
    _behave(fake_app, vaccines=lambda: Response("BCG", mimetype="text/plain",
                                                headers={"ETag": '"abc"'}))
    with pytest.raises(ContractViolation, match="content type 'text/plain'"):
        fake_app.test_client().get("/api/v1/vaccines")


def test_a_missing_required_header_is_caught(fake_app: Flask):
    _behave(fake_app, vaccines=lambda: _json(VACCINES))
    with pytest.raises(ContractViolation, match="lacks the header ETag"):
        fake_app.test_client().get("/api/v1/vaccines")


def test_a_not_modified_answer_has_no_body(fake_app: Flask):
    _behave(fake_app, vaccines=lambda: Response(status=304, headers={"ETag": '"abc"'}))
    assert fake_app.test_client().get("/api/v1/vaccines").status_code == 304


def test_a_problem_is_checked_like_any_body(fake_app: Flask):
    _behave(fake_app, vaccines=lambda: _problem(401, type=None))
    with pytest.raises(ContractViolation, match=r"\$\.type: None is not of type 'string'"):
        fake_app.test_client().get("/api/v1/vaccines")


def test_an_invalid_request_that_succeeded_is_caught(fake_app: Flask):
    _behave(fake_app, lookup=lambda: _json(CITIZEN))
    client = fake_app.test_client()
    assert client.post("/api/v1/citizens/lookup",
                       json={"health_id": "027061104528"}).status_code == 200
    with pytest.raises(ContractViolation, match="sent a body that does not match"):
        client.post("/api/v1/citizens/lookup", json={"health_id": "nope"})
    with pytest.raises(ContractViolation, match="sent a body that does not match"):
        client.post("/api/v1/citizens/lookup", data=b'{"health_id": "027061104528", "x": 1}',
                    content_type="application/json")


def test_an_invalid_request_that_failed_is_fine(fake_app: Flask):
    _behave(fake_app, lookup=lambda: _problem(422))
    response = fake_app.test_client().post("/api/v1/citizens/lookup", json={"health_id": "x"})
    assert response.status_code == 422


def test_query_parameters_of_a_success_are_checked(fake_app: Flask):
    page = {"items": [], "next_cursor": None}
    _behave(fake_app, section=lambda: _json(page, ETag='"p"'))
    client = fake_app.test_client()
    assert client.get(CITIZEN_PATH + "/immunizations?limit=20").status_code == 200
    with pytest.raises(ContractViolation, match="query limit"):
        client.get(CITIZEN_PATH + "/immunizations?limit=0")


def test_path_parameters_off_their_schema_must_end_in_404(fake_app: Flask):
    page = {"items": [], "next_cursor": None}
    _behave(fake_app, section=lambda: _json(page, ETag='"p"'))
    client = fake_app.test_client()
    with pytest.raises(ContractViolation,
                       match=r"section='pets' does not fit .* \(expected 401 or 404\)"):
        client.get(CITIZEN_PATH + "/pets")
    with pytest.raises(ContractViolation, match=r"citizen_id='42'.*expected 401 or 404"):
        client.get("/api/v1/citizens/42/immunizations")
    _behave(fake_app, section=lambda: _problem(404))
    assert client.get(CITIZEN_PATH + "/pets").status_code == 404


def test_methods_and_paths_outside_the_spec(fake_app: Flask):
    client = fake_app.test_client()
    # A method the path does not document must be refused.
    _behave(fake_app, citizen=lambda: _json(CITIZEN))
    with pytest.raises(ContractViolation, match="documents no DELETE"):
        client.delete(CITIZEN_PATH)
    assert client.put(CITIZEN_PATH).status_code == 405
    # A path the spec does not know must not answer, test-only routes are not checked.
    with pytest.raises(ContractViolation, match="not a documented route"):
        client.get("/not-in-the-spec")
    assert client.get("/nowhere").status_code == 404
    assert client.get("/_probe/anything").status_code == 418
    assert client.get("/api/_probe/anything").status_code == 418


def test_batch_items_are_checked_one_by_one(fake_app: Flask):
    entry = load_contract().spec["components"]["examples"]["ImmunizationEntry"]["value"]
    good = {"client_item_id": "a-1", "citizen_id": CITIZEN["id"], "vaccine_code": "BCG",
            "dose_number": 1, "occurrence_date": "2025-03-20", "lot_number": "B1"}
    bad = {"client_item_id": "a-2", "citizen_id": CITIZEN["id"], "vaccine_code": "BCG"}
    problem = json.loads(_problem(422).get_data())

    def results(*statuses: int) -> Response:
        items = [{"client_item_id": f"a-{i + 1}", "status": s,
                  **({"entry": entry} if s < 300 else {"problem": problem})}
                 for i, s in enumerate(statuses)]
        failed = sum(1 for s in statuses if s >= 400)
        return _json({"results": items, "counts": {"created": len(statuses) - failed,
                                                   "replayed": 0, "failed": failed}})

    client = fake_app.test_client()
    _behave(fake_app, batch=lambda: results(201, 422))
    assert client.post("/api/v1/immunizations/batch", json={"items": [good, bad]}).status_code \
        == 200
    _behave(fake_app, batch=lambda: results(201, 201))
    with pytest.raises(ContractViolation, match="item 1 accepted"):
        client.post("/api/v1/immunizations/batch", json={"items": [good, bad]})


def test_unchecked_lets_a_deliberate_violation_through(fake_app: Flask):
    _behave(fake_app, vaccines=lambda: _json({}, 418))
    client = fake_app.test_client()
    with client.unchecked():
        assert client.get("/api/v1/vaccines").status_code == 418
    with pytest.raises(ContractViolation):
        client.get("/api/v1/vaccines")


def test_the_real_app_keeps_the_contract_on_its_ops_routes(app: Any):
    app.test_client_class = ContractClient
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_inline_parameters_and_bodies_are_checked(tmp_path: Path):
    spec = {
        "openapi": "3.1.0",
        "paths": {
            "/x/{n}": {
                "parameters": [{"name": "n", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 1}}],
                "post": {
                    "parameters": [{"name": "q", "in": "query", "schema": {"enum": ["a"]}}],
                    "requestBody": {"content": {"application/json": {"schema": {
                        "type": "object", "properties": {"v": {"type": "string"}}}}}},
                    "responses": {"200": {"description": "-", "content": {"text/plain": {}}}},
                },
            },
        },
    }
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")

    class Client(ContractClient):
        contract_path = path

    app = Flask(__name__)
    register_error_handlers(app)
    app.add_url_rule("/x/<n>", "x", lambda n: Response("ok", mimetype="text/plain"),
                     methods=["POST"])
    app.test_client_class = Client
    client = app.test_client()
    assert client.post("/x/3?q=a", json={"v": "w"}).status_code == 200
    with pytest.raises(ContractViolation, match="query q"):
        client.post("/x/3?q=b", json={"v": "w"})
    with pytest.raises(ContractViolation, match=r"\$\.v: 1 is not of type 'string'"):
        client.post("/x/3", json={"v": 1})
    with pytest.raises(ContractViolation, match="n='0' does not fit"):
        client.post("/x/0", json={})

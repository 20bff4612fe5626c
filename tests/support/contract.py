"""Every request and response of the test suite checked against openapi.yaml (as Zulip does).

`ContractClient` is a Flask test client whose `open()` checks each exchange with a documented
route: the status must be documented for the operation, the content type must be one the
response lists, the JSON body must validate against its schema (JSON Schema 2020-12 with the
spec's `#/components/...` references), required response headers must be present, and a request
that got a 2xx must itself have been valid (body, query and header parameters). A request no
operation covers (undocumented path or method, a path parameter off its schema) must be refused
with a problem: 404 or 405, or 401 under /api where the token is checked before routing. Routes
only tests register (`IGNORED_PREFIXES`, or a path segment starting with "_") are not checked.

The spec is parsed once per run and each schema's validator built once, so a check costs about a
millisecond per entry of a body.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC_URI = "urn:phr-vn:openapi"
_SCHEMA_URI = "urn:phr-vn:openapi:schemas:"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Routes that exist only when a test or the benchmark registers them (tests/test_openapi_routes),
# and by convention any path with a segment starting with "_" (/api/_probe/..., /_canary/...).
IGNORED_PREFIXES = ("/static", "/_probe", "/_logprobe", "/_bench")
_BODY_EXCERPT = 600
# What may answer a request no operation covers. Under /api the token is checked before
# routing (auth/resource.py), so a request without one gets 401 whatever its path.
UNROUTED = (401, 404, 405)
UNDOCUMENTED_METHOD = (401, 405)
UNROUTED_PARAMETER = (401, 404)
# libyaml parses the spec several times faster than the pure-Python loader.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ContractViolation(AssertionError):
    """An exchange that openapi.yaml does not allow."""


# Formats ----------

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

format_checker = FormatChecker(formats=("email", "ipv4", "ipv6", "regex"))


@format_checker.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    # RFC 3339: an offset is mandatory (jsonschema checks this only with an extra package).
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return True


@format_checker.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE.match(value):
        return False
    dt.date.fromisoformat(value)
    return True


@format_checker.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _UUID.match(value):
        return False
    uuid.UUID(value)
    return True


# The spec ----------

def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pointer: str
    operation: Mapping[str, Any]
    parameters: tuple[tuple[Mapping[str, Any], str], ...]  # (resolved parameter, its pointer)

    @property
    def label(self) -> str:
        name = self.operation.get("operationId", "?")
        return f"{self.method.upper()} {self.template} ({name})"


@dataclass(frozen=True)
class Route:
    template: str
    segments: tuple[str | None, ...]  # None: a path parameter
    names: tuple[str, ...]
    item: Mapping[str, Any]

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        values: dict[str, str] = {}
        names = iter(self.names)
        for expected, actual in zip(self.segments, segments, strict=True):
            if expected is None:
                values[next(names)] = unquote(actual)
            elif expected != actual:
                return None
        return values

    @property
    def specificity(self) -> tuple[bool, ...]:
        # Concrete segments win over templated ones, leftmost first (OpenAPI path matching).
        return tuple(segment is not None for segment in self.segments)


_PARAM = re.compile(r"^\{([^}/]+)\}$")


def _route(template: str, item: Mapping[str, Any]) -> Route:
    segments: list[str | None] = []
    names: list[str] = []
    for part in template.strip("/").split("/"):
        match = _PARAM.match(part)
        if match:
            segments.append(None)
            names.append(match.group(1))
        else:
            segments.append(part)
    return Route(template=template, segments=tuple(segments), names=tuple(names), item=item)


class Contract:
    """openapi.yaml ready for checking: routes, references and cached validators."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        # Validation runs on a copy whose references are absolute and where every component
        # schema is a resource of its own: a `$ref` is then a dictionary lookup, not a walk
        # through the whole document (the walk was most of the checking time).
        self._absolute = _absolute_refs(spec)
        resources = [(SPEC_URI, DRAFT202012.create_resource(self._absolute))]
        for name, schema in self._absolute.get("components", {}).get("schemas", {}).items():
            resources.append((_SCHEMA_URI + name, DRAFT202012.create_resource(schema)))
        self.registry: Registry = Registry().with_resources(resources)
        self.routes = [_route(path, item) for path, item in spec.get("paths", {}).items()]
        self._validators: dict[str, Draft202012Validator] = {}
        self._lock = threading.Lock()
        # (operationId, status) pairs the run has checked: what the suite covers of the spec.
        self.exercised: set[tuple[str, int]] = set()

    @classmethod
    def from_file(cls, path: Path = SPEC_PATH) -> Contract:
        return cls(yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER))  # noqa: S506

    # References ----------
    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow a `$ref` to `#/...` (siblings such as `description` are kept over it)."""
        seen = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ContractViolation(f"openapi.yaml: only local references are supported: {ref}")
            target: Any = self.spec
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node, pointer = ({**target, **siblings} if siblings else target), ref[1:]
            seen += 1
            if seen > 20:
                raise ContractViolation(f"openapi.yaml: reference loop at {ref}")
        return node, pointer

    def validator(self, pointer: str) -> Draft202012Validator:
        """The validator of the schema at `pointer` (a JSON pointer into the spec)."""
        found = self._validators.get(pointer)
        if found is None:
            schema: Any = self._absolute
            for part in pointer.lstrip("/").split("/") if pointer else ():
                key = part.replace("~1", "/").replace("~0", "~")
                schema = schema[int(key)] if isinstance(schema, list) else schema[key]
            found = Draft202012Validator(schema, registry=self.registry,
                                         format_checker=format_checker)
            with self._lock:
                self._validators[pointer] = found
        return found

    def errors(self, instance: Any, pointer: str) -> list[ValidationError]:
        return list(self.validator(pointer).iter_errors(instance))

    # Routing ----------
    def route_for(self, path: str) -> tuple[Route, dict[str, str]] | None:
        segments = path.strip("/").split("/")
        bound = [(route, values) for route in self.routes
                 if (values := route.bind(segments)) is not None]
        if not bound:
            return None
        return max(bound, key=lambda pair: pair[0].specificity)

    def operation(self, route: Route, method: str) -> Operation | None:
        operation = route.item.get(method)
        if not isinstance(operation, Mapping):
            return None
        base = _pointer("paths", route.template)
        merged: dict[tuple[str, str], tuple[Mapping[str, Any], str]] = {}
        for owner, where in ((route.item, base), (operation, base + _pointer(method))):
            for index, raw in enumerate(owner.get("parameters", [])):
                parameter, at = self.resolve(raw, where + _pointer("parameters", str(index)))
                merged[(parameter["name"].lower(), parameter["in"])] = (parameter, at)
        return Operation(
            method=method, template=route.template, pointer=base + _pointer(method),
            operation=operation, parameters=tuple(merged.values()),
        )

    # Checking ----------
    def check(self, request: Request, response: TestResponse) -> None:
        """Raise ContractViolation when this exchange is not what openapi.yaml says."""
        path = request.path
        if is_test_only(path) or request.method == "OPTIONS":
            return
        found = self.route_for(path)
        if found is None:
            _refused(response, f"{request.method} {path} is not a documented route", UNROUTED)
            return
        route, values = found
        method = "get" if request.method == "HEAD" else request.method.lower()
        operation = self.operation(route, method)
        if operation is None:
            _refused(response, f"{route.template} documents no {method.upper()}",
                     UNDOCUMENTED_METHOD)
            return
        if not self._path_values_fit(operation, values, response, path):
            return
        status = response.status_code
        self._check_response(operation, request, response)
        self.exercised.add((str(operation.operation.get("operationId")), status))
        if 200 <= status < 300:
            self._check_request(operation, request, response)

    def _path_values_fit(self, operation: Operation, values: Mapping[str, str],
                         response: TestResponse, path: str) -> bool:
        for parameter, at in operation.parameters:
            if parameter["in"] != "path":
                continue
            value = _coerce(values.get(parameter["name"], ""), parameter.get("schema", {}))
            if self.errors(value, at + "/schema"):
                _refused(response, f"{operation.label}: in {path}, path parameter "
                         f"{parameter['name']}={values.get(parameter['name'])!r} does not fit "
                         "its schema", UNROUTED_PARAMETER)
                return False
        return True

    def _response_spec(self, operation: Operation, status: int) -> tuple[Mapping[str, Any], str]:
        responses = operation.operation.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                return self.resolve(responses[key],
                                    operation.pointer + _pointer("responses", key))
        documented = ", ".join(sorted(responses))
        raise ContractViolation(
            f"openapi.yaml: {operation.label} answered {status}, which it does not document "
            f"(documented: {documented})."
        )

    def _check_response(self, operation: Operation, request: Request,
                        response: TestResponse) -> None:
        status = response.status_code
        spec, pointer = self._response_spec(operation, status)
        where = f"{operation.label} {status}"
        self._check_headers(spec, pointer, response, where)
        content = spec.get("content") or {}
        body = _response_body(response)
        if not content:
            if body:
                raise ContractViolation(
                    f"openapi.yaml: {where} documents no body, yet one came.{_excerpt(response)}"
                )
            return
        if request.method == "HEAD":
            return
        mimetype = response.mimetype
        media_key = _media_key(content, mimetype)
        if media_key is None:
            raise ContractViolation(
                f"openapi.yaml: {where} answered content type {mimetype!r}; documented: "
                f"{', '.join(content)}.{_excerpt(response)}"
            )
        if not _is_json(mimetype) or "schema" not in content[media_key]:
            return
        try:
            document = json.loads(body)
        except ValueError:
            raise ContractViolation(
                f"openapi.yaml: {where} answered {mimetype} that is not JSON.{_excerpt(response)}"
            ) from None
        schema_pointer = pointer + _pointer("content", media_key, "schema")
        self._raise_on_errors(document, schema_pointer, f"{where} response body",
                              _excerpt(response))

    def _check_headers(self, spec: Mapping[str, Any], pointer: str, response: TestResponse,
                       where: str) -> None:
        for name, raw in (spec.get("headers") or {}).items():
            header, at = self.resolve(raw, pointer + _pointer("headers", name))
            value = response.headers.get(name)
            if value is None:
                if header.get("required"):
                    raise ContractViolation(f"openapi.yaml: {where} lacks the header {name}.")
                continue
            schema = header.get("schema")
            if schema is not None:
                self._raise_on_errors(_coerce(value, schema), at + "/schema",
                                      f"{where} header {name}", "")

    def _check_request(self, operation: Operation, request: Request,
                       response: TestResponse) -> None:
        where = f"{operation.label} answered {response.status_code} to a request that"
        for parameter, at in operation.parameters:
            place, name = parameter["in"], parameter["name"]
            if place == "query":
                values = request.args.getlist(name)
            elif place == "header":
                values = request.headers.getlist(name)
            else:
                continue
            if not values:
                if parameter.get("required"):
                    raise ContractViolation(f"openapi.yaml: {where} lacks the {place} {name}.")
                continue
            for value in values:
                self._raise_on_errors(_coerce(value, parameter.get("schema", {})),
                                      at + "/schema", f"{where} has the {place} {name}", "")
        self._check_request_body(operation, request, response, where)

    def _check_request_body(self, operation: Operation, request: Request,
                            response: TestResponse, where: str) -> None:
        declared = operation.operation.get("requestBody")
        if declared is None:
            return
        body_spec, pointer = self.resolve(declared, operation.pointer + "/requestBody")
        raw = _request_body(request)
        if not raw:
            if body_spec.get("required"):
                raise ContractViolation(f"openapi.yaml: {where} has no body (required).")
            return
        content = body_spec.get("content") or {}
        media_key = _media_key(content, request.mimetype)
        if media_key is None:
            raise ContractViolation(
                f"openapi.yaml: {where} sent {request.mimetype!r}; documented: "
                f"{', '.join(content)}."
            )
        if not _is_json(request.mimetype) or "schema" not in content[media_key]:
            return
        try:
            document = json.loads(raw)
        except ValueError:
            raise ContractViolation(f"openapi.yaml: {where} sent a body that is not JSON.") \
                from None
        schema_pointer = pointer + _pointer("content", media_key, "schema")
        batch = operation.operation.get("x-batch-items")
        if batch is not None:
            document = self._accepted_batch_items(operation, batch, document, response, where)
            if document is None:
                return
        self._raise_on_errors(document, schema_pointer, f"{where} sent a body that", "")

    def _accepted_batch_items(self, operation: Operation, batch: Mapping[str, Any],
                              document: Any, response: TestResponse, where: str) -> Any:
        """Per-item answers: only the items answered 2xx must have been valid items."""
        try:
            answer = json.loads(_response_body(response))
        except ValueError:
            answer = {}
        items = document.get(batch["request"]) if isinstance(document, dict) else None
        results = answer.get(batch["response"]) if isinstance(answer, dict) else None
        if not isinstance(items, list) or not isinstance(results, list):
            return document
        if len(items) != len(results):
            raise ContractViolation(
                f"openapi.yaml: {operation.label} answered {len(results)} results for "
                f"{len(items)} items."
            )
        item_pointer = operation.pointer + _pointer("x-batch-items", "schema")
        accepted = []
        for index, (item, result) in enumerate(zip(items, results, strict=True)):
            if isinstance(result, dict) and 200 <= int(result.get("status", 0)) < 300:
                self._raise_on_errors(item, item_pointer,
                                      f"{where} had item {index} accepted, yet that item", "")
                accepted.append(item)
        if not accepted:
            return None
        return {**document, batch["request"]: accepted}

    def _raise_on_errors(self, instance: Any, pointer: str, what: str, tail: str) -> None:
        errors = self.errors(instance, pointer)
        if not errors:
            return
        first = best_match(errors)
        lines = [_describe(first)]
        lines += [_describe(e) for e in errors if e is not first][:2]
        raise ContractViolation(
            f"openapi.yaml: {what} does not match #{pointer}:\n  " + "\n  ".join(lines) + tail
        )


def _absolute_refs(node: Any) -> Any:
    """A copy of `node` whose local references name the spec (or a component schema) by URI."""
    if isinstance(node, Mapping):
        copy = {key: _absolute_refs(value) for key, value in node.items()}
        ref = copy.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            name = ref.removeprefix("#/components/schemas/")
            simple = name != ref and "/" not in name
            copy["$ref"] = _SCHEMA_URI + name if simple else SPEC_URI + ref
        return copy
    if isinstance(node, list):
        return [_absolute_refs(value) for value in node]
    return node


def is_test_only(path: str) -> bool:
    """Whether `path` belongs to a route only tests register (never checked)."""
    return path.startswith(IGNORED_PREFIXES) or any(
        segment.startswith("_") for segment in path.split("/"))


def _refused(response: TestResponse, why: str, allowed: tuple[int, ...]) -> None:
    """A request the spec has no operation for must be refused, with a problem."""
    status = response.status_code
    if status not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ContractViolation(
            f"openapi.yaml: {why}, yet it answered {status} (expected {expected})."
            + _excerpt(response)
        )
    # The FHIR face answers its refusals as OperationOutcome (application/fhir+json).
    path = urlsplit(response.request.path).path
    refusal = ("application/fhir+json" if path.startswith("/fhir/")
               else "application/problem+json")
    # A browser outside the programs' paths gets the portal's page in its language.
    if response.mimetype == "text/html" and _browser_page(response.request, path):
        return
    if _response_body(response) and response.mimetype != refusal:
        raise ContractViolation(f"openapi.yaml: {why}; its {status} is not {refusal}."
                                + _excerpt(response))


def _browser_page(request: Request, path: str) -> bool:
    from portal import MACHINE_PREFIXES

    best = request.accept_mimetypes.best_match(
        ["application/problem+json", "application/json", "text/html"])
    return best == "text/html" and not path.startswith(MACHINE_PREFIXES)


def _describe(error: ValidationError) -> str:
    where = error.json_path
    message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
    return f"at {where}: {message}"


def _media_key(content: Mapping[str, Any], mimetype: str) -> str | None:
    if mimetype in content:
        return mimetype
    family = mimetype.split("/", 1)[0] + "/*"
    for key in (family, "*/*"):
        if key in content:
            return key
    return None


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """A query, header or path value typed as its schema says (when it can be)."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if "integer" in kinds and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "number" in kinds:
        with contextlib.suppress(ValueError):
            return float(value)
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    return value


def _response_body(response: TestResponse) -> bytes:
    """The body as the server meant it (a gzip-compressed answer is unpacked)."""
    body = response.get_data()
    if body and response.headers.get("Content-Encoding", "").lower() == "gzip":
        return gzip.decompress(body)
    return body


def _request_body(request: Request) -> bytes:
    stream = request.environ.get("wsgi.input")
    if stream is None or not hasattr(stream, "seek"):
        return b""
    stream.seek(0)
    return stream.read()


def _excerpt(response: TestResponse) -> str:
    text = _response_body(response).decode("utf-8", errors="replace")
    if not text:
        return ""
    text = text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "…"
    return f"\n  body: {text}"


def load_contract(path: Path = SPEC_PATH) -> Contract:
    """The contract of `path`, parsed and compiled once per test run."""
    return _contract_of(path.resolve())


@cache
def _contract_of(path: Path) -> Contract:
    return Contract.from_file(path)


class ContractClient(FlaskClient):
    """A Flask test client that checks every request and response against openapi.yaml."""

    contract_path: Path = SPEC_PATH

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checking = True

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        if self.checking:
            contract = load_contract(self.contract_path)
            for exchange in (*response.history, response):
                contract.check(exchange.request, exchange)
        return response

    @contextlib.contextmanager
    def unchecked(self) -> Iterator[ContractClient]:
        """Requests that deliberately leave the contract (say why where you use it)."""
        self.checking = False
        try:
            yield self
        finally:
            self.checking = True

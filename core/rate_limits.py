"""Rate limits on the machine-facing routes, per token and per address (flask-limiter).

Every limited request counts in the budgets that apply to it, each a fixed-window counter in
the shared storage (`RATELIMIT_STORAGE_URI`: Redis in production, so that every gunicorn worker
and host counts together; memory, per process, in development):

- `RATELIMIT_PER_TOKEN`: per bearer token, whatever the route;
- `RATELIMIT_PER_ADDRESS`: per client address, every request (a flood of made-up tokens
  included); high, because carriers and hospitals put many people behind one address;
- `RATELIMIT_ANONYMOUS`: per address, requests without a bearer token (public FHIR metadata,
  share-link recipients);
- named route budgets (`RATELIMIT_<NAME>`, e.g. the station batch, the export): the routes
  the composition root names share one budget per token (per address without a token), on top
  of the rest.

The check runs before anything else of the request (no database statement, nothing written) and
a refusal is the 429 problem every other throttle answers (vi/en, `Retry-After`), rendered by
the face of the path (OperationOutcome under /fhir). Every limited answer carries the IETF
draft headers `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and
`RateLimit-Policy` of the budget it counted in. Neither tokens nor addresses reach the storage:
keys are HMACs under the app's secret key. A storage outage never refuses a request: the
counts fall back to this process's memory until the storage answers again.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded
from limits.storage import MemoryStorage

from core.errors import TooManyRequests, problem_response

log = logging.getLogger("phr.rate_limits")

EXTENSION = "phr.rate_limits"
# Fixed windows: one atomic increment per budget and an exact Retry-After (a sliding-window
# counter can only guess when capacity returns). The price: a client may spend a budget at
# the end of one window and again at the start of the next.
STRATEGY = "fixed-window"
# Redis answers within milliseconds; one that does not must not hold requests (the limiter
# then fails open to per-process memory).
STORAGE_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}



class SweptMemoryStorage(MemoryStorage):
    """limits' in-process storage (development, tests), its expired counters swept on the
    request thread at most once a second. The library's own sweep starts a new timer thread
    whenever the last one has ended (10 ms after it started): with one client that was a
    thread per request, and `Thread.start` waits until the new thread holds the GIL (0.3 ms
    of CPU and up to a switch interval of waiting per request, in the bench's profile).
    Counting is unchanged: a counter whose window has passed reads as zero whether or not it
    was swept (`get`)."""

    STORAGE_SCHEME = ["phr-memory"]  # noqa: RUF012 - the registry of limits reads it
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: str) -> None:
        self._next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the library's hook
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def storage_uri_for(configured: str) -> str:
    """The storage the limiter opens for RATELIMIT_STORAGE_URI: memory means ours."""
    if configured.startswith("memory://"):
        return "phr-memory://" + configured.removeprefix("memory://")
    return configured


# The general budgets and the config key each is read from.
PER_TOKEN = "RATELIMIT_PER_TOKEN"  # noqa: S105 - a config key, not a secret
PER_ADDRESS = "RATELIMIT_PER_ADDRESS"
ANONYMOUS = "RATELIMIT_ANONYMOUS"

HEADER_LIMIT = "RateLimit-Limit"
HEADER_REMAINING = "RateLimit-Remaining"
HEADER_RESET = "RateLimit-Reset"
HEADER_POLICY = "RateLimit-Policy"
HEADERS = (HEADER_LIMIT, HEADER_REMAINING, HEADER_RESET, HEADER_POLICY)

# Which budget the headers describe when none was exceeded: the most specific one that applied
# (one storage read per answer, not one per budget).
_HEADER_ORDER = ("budget", "token", "anonymous", "address")


def install_rate_limits(
    app: Flask,
    *,
    paths: Iterable[str],
    anonymous_paths: Iterable[str],
    route_budgets: Mapping[str, str],
) -> Limiter:
    """Limit requests whose path starts with one of `paths` (the rest is never counted).

    `anonymous_paths`: where a request without a bearer token also counts in the anonymous
    budget. `route_budgets`: endpoint name -> budget name; each budget is read from
    `RATELIMIT_<NAME>` (upper case, dashes as underscores). Install it after the request-id
    hook (a 429 carries the request id and language) and before any hook that reads the
    database; call `check_route_budgets` once every blueprint is registered.
    """
    prefixes = tuple(paths)
    anonymous_prefixes = tuple(anonymous_paths)
    budgets = dict(route_budgets)
    config = app.config
    secret = config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()

    def token_key() -> str:
        token = _bearer_token()
        return "tok:" + _keyed(key, "token", token) if token else ""

    def address_key() -> str:
        return "addr:" + _keyed(key, "address", address_bucket(request.remote_addr))

    def caller_key() -> str:
        return token_key() or address_key()

    def budget_of_request() -> str | None:
        return budgets.get(request.endpoint or "")

    limits = [
        ApplicationLimit(lambda: config[PER_TOKEN], key_function=token_key, scope="token",
                         exempt_when=lambda: _bearer_token() is None),
        ApplicationLimit(lambda: config[PER_ADDRESS], key_function=address_key,
                         scope="address"),
        ApplicationLimit(lambda: config[ANONYMOUS], key_function=address_key,
                         scope="anonymous",
                         exempt_when=lambda: _bearer_token() is not None
                         or not request.path.startswith(anonymous_prefixes)),
    ]
    for name in sorted(set(budgets.values())):
        setting = budget_setting(name)
        limits.append(ApplicationLimit(
            _config_value(config, setting), key_function=caller_key, scope="budget:" + name,
            exempt_when=_not_in_budget(name, budget_of_request)))

    storage_uri = config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if config.get("APP_ENV") == "production" and storage_uri.startswith("memory://"):
        log.warning("rate limits counted per process: set RATELIMIT_STORAGE_URI to redis://")
    limiter = Limiter(
        _unused_key,
        application_limits=limits,
        storage_uri=storage_uri_for(storage_uri),
        storage_options=STORAGE_OPTIONS if storage_uri.startswith(("redis", "rediss")) else {},
        strategy=STRATEGY,
        key_prefix=str(config.get("RATELIMIT_KEY_PREFIX") or "phr"),
        # Our own headers (below): the library's would put a Retry-After on every answer,
        # a 200 or another refusal's 503 included.
        headers_enabled=False,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        request_identifier=lambda: request.endpoint or "<unmatched>",
    )
    limiter.request_filter(lambda: request.method == "OPTIONS"
                           or not request.path.startswith(prefixes))
    limiter.init_app(app)
    app.extensions[EXTENSION] = (limiter, budgets)
    app.register_error_handler(RateLimitExceeded, _refused)
    app.after_request(_add_headers)
    return limiter


def check_route_budgets(app: Flask) -> None:
    """Fail at start when a budget names an endpoint the app does not have (a renamed route
    would silently fall back to the general budgets)."""
    _, budgets = app.extensions[EXTENSION]
    missing = sorted(set(budgets) - set(app.view_functions))
    if missing:
        raise RuntimeError(f"rate-limit budgets name unknown endpoints: {', '.join(missing)}")
    unset = sorted({budget_setting(name) for name in budgets.values()} - set(app.config))
    if unset:
        raise RuntimeError(f"rate-limit budgets without a setting: {', '.join(unset)}")


def budget_setting(name: str) -> str:
    """The config key of a named route budget ("batch" -> RATELIMIT_BATCH)."""
    return "RATELIMIT_" + name.upper().replace("-", "_")


def address_bucket(address: str | None) -> str:
    """The unit an address is counted as: the IPv4 address, or the IPv6 /64 (one subscriber's
    prefix: a host picks a new address in it at will)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _keyed(key: bytes, purpose: str, value: str) -> str:
    # Truncated to 128 bits: a storage key, not a credential.
    return hmac.new(key, f"rate-limit:{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _config_value(config: Mapping[str, Any], setting: str) -> Callable[[], str]:
    return lambda: str(config[setting])


def _not_in_budget(name: str, budget_of_request: Callable[[], str | None]) -> Callable[[], bool]:
    return lambda: budget_of_request() != name


def _unused_key() -> str:
    # Every limit names its own key function; this one is never asked.
    return "unused"


def _limiter() -> Limiter:
    limiter, _ = current_app.extensions[EXTENSION]
    return limiter


def _reset_seconds(limit: RequestLimit) -> int:
    """Seconds until the limit's window ends, computed once per request: the 429's
    Retry-After and its RateLimit-Reset say the same."""
    seconds = getattr(limit, "_phr_reset_seconds", None)
    if seconds is None:
        seconds = max(1, math.ceil(limit.window.reset_time - time.time()))
        limit._phr_reset_seconds = seconds  # type: ignore[attr-defined]
    return int(seconds)


def _scope_kind(limit: RequestLimit) -> str:
    # The key is ".../<key>/<scope>/<amount>/<multiples>/<granularity>"; the scope tells the
    # budget ("token", "address", "anonymous", "budget:<name>").
    scope = limit.request_args[-1]
    return scope.split(":", 1)[0]


def _header_limit(limiter: Limiter) -> RequestLimit | None:
    applied = limiter.current_limits
    breached = [limit for limit in applied if limit.breached]
    if breached:
        return breached[0]
    ranked = sorted(applied, key=lambda limit: _HEADER_ORDER.index(_scope_kind(limit))
                    if _scope_kind(limit) in _HEADER_ORDER else len(_HEADER_ORDER))
    return ranked[0] if ranked else None


def _refused(exc: RateLimitExceeded) -> Response:
    retry_after = exc.limit.limit.get_expiry()  # the whole window, if the storage went away
    limit = _header_limit(_limiter())
    if limit is not None:
        try:
            # The same window read as the RateLimit headers: the two agree.
            retry_after = _reset_seconds(limit)
        except Exception:
            log.warning("rate limit window unreadable")
    return problem_response(TooManyRequests(retry_after=retry_after))


def _add_headers(response: Response) -> Response:
    if EXTENSION not in current_app.extensions:
        return response
    limit = _header_limit(_limiter())
    if limit is None:
        return response
    try:
        window = limit.window
        reset = _reset_seconds(limit)
    except Exception:  # a storage outage: the answer goes without the headers
        return response
    item = limit.limit
    response.headers[HEADER_LIMIT] = str(item.amount)
    response.headers[HEADER_REMAINING] = str(max(0, window.remaining))
    response.headers[HEADER_RESET] = str(reset)
    response.headers[HEADER_POLICY] = f"{item.amount};w={item.get_expiry()}"
    return response

"""Rate limits on the machine-facing routes, per token and per address.

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

One storage operation per request. A request counts in all its budgets and learns what its
headers need (each count and the time left in its window) in one call: with Redis one EVALSHA
of `_COUNT_SCRIPT` (INCR each key, PEXPIRE it to the window when its window starts, return
every count and PTTL); in memory the same in a dict under a lock. Written by hand, no longer
with flask-limiter: flask-limiter hits each budget with a storage call of its own and reads the
window again for the headers (with Redis a round trip per budget plus GET and TTL: 20-23 % of
the hottest read's throughput), neither it nor `limits` counts several keys of a fixed window
in one call, and no public extension point of flask-limiter lets one call replace its per-limit
hits; its per-request evaluation also cost ~0.25 ms of Python. `limits` still parses the
"300/minute" settings.

Kept from flask-limiter, exactly: the budgets are counted in its order (the shortest window
first; among equal windows token, address, anonymous, route budget) and counting stops at the
first budget a request exceeds (that one counts the request, the later ones do not: a request
refused by its token's budget does not spend the route budget counted after it); the Redis
keys are the ones it wrote (`LIMITS:LIMITER/<prefix>/<key>/<scope>/<amount>/<multiples>/
<granularity>`), so the workers of the previous release and of this one count together during
a rolling deploy. What differs: the headers describe the count this request's own increment
returned (flask-limiter read the window again after the view, when other workers' requests
might have moved it); during an outage Redis is tried again after 1 s, then after doubling
intervals up to 32 s, by counting the request there (flask-limiter sent a PING first); redis-py's
retries are off, so an unreachable Redis holds a request at most one socket timeout (0.5 s),
not the eleven attempts with back-off of redis-py 8's default; and only memory:// and Redis
(redis://, rediss://, unix://, redis+unix://) are accepted, checked at start (Redis Cluster is
not: the script's keys would span slots).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import redis
from flask import Flask, Response, current_app, request
from limits import parse_many
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.errors import TooManyRequests, problem_response

log = logging.getLogger("phr.rate_limits")

EXTENSION = "phr.rate_limits"
# Fixed windows: one atomic increment per budget and an exact Retry-After (a sliding-window
# counter can only guess when capacity returns). The price: a client may spend a budget at
# the end of one window and again at the start of the next.
# Redis answers within milliseconds; one that does not must not hold requests (the limiter
# then fails open to per-process memory). No retries: one attempt, one timeout at most.
STORAGE_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+unix://")
# After a failed call the storage is tried again this long after (doubling while it fails).
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 32.0

# KEYS: the counters; ARGV: for each, its window in ms and its amount. Each counter in turn is
# incremented and, when its window starts (no expiry yet: a new key), given the window as its
# expiry; the counting stops after the first counter past its amount. Returns count, PTTL
# (ms) for each counter counted.
_COUNT_SCRIPT = """
local result = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[2 * i - 1])
    redis.call('PEXPIRE', key, ttl)
  end
  result[#result + 1] = count
  result[#result + 1] = ttl
  if count > tonumber(ARGV[2 * i]) then
    break
  end
end
return result
"""

# (key, window in ms, amount) for each counter of a request, in counting order.
Counter = tuple[str, int, int]
# (count after this request's increment, ms left in the window) for each counter counted.
Count = tuple[int, int]


class SweptMemoryStorage:
    """Fixed-window counters in this process (development, tests, and Redis's stand-in during
    an outage), their expired entries swept on the request thread at most once a second (no
    timer thread: limits' own memory storage started one for nearly every request, each
    `Thread.start` waiting for the GIL). A counter whose window has passed counts from zero
    whether or not it was swept."""

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        self.storage: dict[str, int] = {}
        self.expirations: dict[str, float] = {}  # time.monotonic() at which the window ends
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def count(self, counters: Sequence[Counter]) -> list[Count]:
        """What `_COUNT_SCRIPT` does, under a lock."""
        now = time.monotonic()
        counted: list[Count] = []
        with self._lock:
            if now >= self._next_sweep:
                self._next_sweep = now + self.SWEEP_SECONDS
                self._sweep(now)
            storage, expirations = self.storage, self.expirations
            for key, window_ms, amount in counters:
                ends = expirations.get(key)
                if ends is None or ends <= now:
                    ends = expirations[key] = now + window_ms / 1000
                    storage[key] = 0
                count = storage[key] = storage[key] + 1
                counted.append((count, min(window_ms, math.ceil((ends - now) * 1000))))
                if count > amount:
                    break
        return counted

    def get(self, key: str) -> int:
        ends = self.expirations.get(key)
        if ends is None or ends <= time.monotonic():
            return 0
        return self.storage.get(key, 0)

    def _sweep(self, now: float) -> None:
        for key in [key for key, ends in self.expirations.items() if ends <= now]:
            del self.expirations[key]
            self.storage.pop(key, None)


class RedisStorage:
    """The counters in Redis: one EVALSHA per request (redis-py's `register_script` loads the
    script again after a Redis restart forgot it)."""

    def __init__(self, uri: str) -> None:
        if uri.startswith("redis+unix://"):
            uri = "unix://" + uri.removeprefix("redis+unix://")
        self.client = redis.Redis.from_url(uri, retry=Retry(NoBackoff(), 0), **STORAGE_OPTIONS)
        self._script = self.client.register_script(_COUNT_SCRIPT)

    def count(self, counters: Sequence[Counter]) -> list[Count]:
        args: list[int] = []
        for _key, window_ms, amount in counters:
            args += (window_ms, amount)
        flat = self._script(keys=[key for key, _window, _amount in counters], args=args)
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


class RateLimiter:
    """The storage a request counts in: the configured one, or while it fails this process's
    memory (tried again after RETRY_FIRST_SECONDS, doubling up to RETRY_MAX_SECONDS)."""

    def __init__(self, storage_uri: str) -> None:
        self.storage: SweptMemoryStorage | RedisStorage
        self.fallback: SweptMemoryStorage | None = None
        if storage_uri.startswith("memory://"):
            self.storage = SweptMemoryStorage()
        elif storage_uri.startswith(REDIS_SCHEMES):
            self.storage = RedisStorage(storage_uri)
            self.fallback = SweptMemoryStorage()
        else:
            raise RuntimeError("RATELIMIT_STORAGE_URI must be memory:// or redis://host:port/db "
                               f"(or rediss://, unix://), not {storage_uri.split(':', 1)[0]}://…")
        self._retry_at = 0.0  # while the storage fails: when to try it again
        self._retry_after = 0.0

    def count(self, counters: Sequence[Counter]) -> list[Count]:
        fallback = self.fallback
        if fallback is None:
            return self.storage.count(counters)
        if self._retry_after and time.monotonic() < self._retry_at:
            return fallback.count(counters)
        try:
            counted = self.storage.count(counters)
        except redis.RedisError as exc:
            if not self._retry_after:
                log.warning("rate limit storage unreachable: counting in this process's "
                            "memory until it answers (%s)", type(exc).__name__)
                self._retry_after = RETRY_FIRST_SECONDS
            else:
                self._retry_after = min(self._retry_after * 2, RETRY_MAX_SECONDS)
            self._retry_at = time.monotonic() + self._retry_after
            return fallback.count(counters)
        if self._retry_after:
            log.info("rate limit storage recovered")
            self._retry_after = 0.0
        return counted


class _Window(NamedTuple):
    """One "N/period" of a budget's setting."""

    granularity: int  # seconds: the counting order (flask-limiter's, shortest first)
    amount: int
    seconds: int  # the window
    suffix: str  # the key's end: "<amount>/<multiples>/<granularity>"


@functools.lru_cache(maxsize=64)
def _windows(setting: str) -> tuple[_Window, ...]:
    return tuple(_Window(item.GRANULARITY.seconds, item.amount, item.get_expiry(),
                         f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}")
                 for item in parse_many(setting))


# The general budgets and the config key each is read from.
PER_TOKEN = "RATELIMIT_PER_TOKEN"  # noqa: S105 - a config key, not a secret
PER_ADDRESS = "RATELIMIT_PER_ADDRESS"
ANONYMOUS = "RATELIMIT_ANONYMOUS"

HEADER_LIMIT = "RateLimit-Limit"
HEADER_REMAINING = "RateLimit-Remaining"
HEADER_RESET = "RateLimit-Reset"
HEADER_POLICY = "RateLimit-Policy"
HEADERS = (HEADER_LIMIT, HEADER_REMAINING, HEADER_RESET, HEADER_POLICY)

# Which budget the headers describe when none was exceeded: the most specific one that applied.
_HEADER_ORDER = ("budget", "token", "anonymous", "address")
# Where a request's count waits for its headers (the environ, not `g`: the portal's in-process
# API calls share the page's app context).
_ENVIRON_KEY = "phr.rate_limit"


class _Outcome(NamedTuple):
    """The budget a request's headers describe, as its count left it."""

    window: _Window
    count: int
    ttl_ms: int

    @property
    def reset_seconds(self) -> int:
        """Seconds until the window ends: the 429's Retry-After and RateLimit-Reset."""
        return max(1, math.ceil(self.ttl_ms / 1000))


def install_rate_limits(
    app: Flask,
    *,
    paths: Iterable[str],
    anonymous_paths: Iterable[str],
    route_budgets: Mapping[str, str],
) -> RateLimiter:
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

    storage_uri = config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if config.get("APP_ENV") == "production" and storage_uri.startswith("memory://"):
        log.warning("rate limits counted per process: set RATELIMIT_STORAGE_URI to redis://")
    limiter = RateLimiter(storage_uri)
    # limits' RedisStorage prefix and namespace: the keys flask-limiter wrote.
    key_base = f"LIMITS:LIMITER/{config.get('RATELIMIT_KEY_PREFIX') or 'phr'}/"

    def count_request() -> Response | None:
        if request.method == "OPTIONS" or not request.path.startswith(prefixes):
            return None
        token = _bearer_token()
        address = "addr:" + _keyed(key, "address", address_bucket(request.remote_addr))
        caller = "tok:" + _keyed(key, "token", token) if token else address
        # (kind, "<key>/<scope>/", setting), in flask-limiter's order.
        budgets_applied = []
        if token:
            budgets_applied.append(("token", caller + "/token/", config[PER_TOKEN]))
        budgets_applied.append(("address", address + "/address/", config[PER_ADDRESS]))
        if not token and request.path.startswith(anonymous_prefixes):
            budgets_applied.append(("anonymous", address + "/anonymous/", config[ANONYMOUS]))
        name = budgets.get(request.endpoint or "")
        if name is not None:
            budgets_applied.append(("budget", f"{caller}/budget:{name}/",
                                    config[budget_setting(name)]))
        applied = sorted(((window, kind, scoped) for kind, scoped, setting in budgets_applied
                          for window in _windows(str(setting))),
                         key=lambda entry: entry[0].granularity)
        try:
            counted = limiter.count([(key_base + scoped + window.suffix,
                                      window.seconds * 1000, window.amount)
                                     for window, _kind, scoped in applied])
        except Exception:  # never refuse for the limiter's own failure
            log.exception("rate limits not counted")
            return None
        # Shorter than `applied` when a budget was exceeded: the later ones were not counted.
        outcomes = [(kind, _Outcome(window, count, ttl)) for (window, kind, _scoped), (count, ttl)
                    in zip(applied, counted, strict=False)]
        if not outcomes:
            return None
        kind, last = outcomes[-1]
        if last.count > last.window.amount:
            request.environ[_ENVIRON_KEY] = last
            log.info("rate limit %s/%ss exceeded (%s)", last.window.amount,
                     last.window.seconds, kind)
            return problem_response(TooManyRequests(retry_after=last.reset_seconds))
        request.environ[_ENVIRON_KEY] = min(
            outcomes, key=lambda outcome: _HEADER_ORDER.index(outcome[0]))[1]
        return None

    app.before_request(count_request)
    app.after_request(_add_headers)
    app.extensions[EXTENSION] = (limiter, budgets)
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


def _add_headers(response: Response) -> Response:
    outcome: _Outcome | None = request.environ.get(_ENVIRON_KEY)
    if outcome is None or EXTENSION not in current_app.extensions:
        return response
    window = outcome.window
    response.headers[HEADER_LIMIT] = str(window.amount)
    response.headers[HEADER_REMAINING] = str(max(0, window.amount - outcome.count))
    response.headers[HEADER_RESET] = str(outcome.reset_seconds)
    response.headers[HEADER_POLICY] = f"{window.amount};w={window.seconds}"
    return response

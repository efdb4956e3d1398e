"""Where a registry is and how to reach it: scheme, host, TLS rules, retry policy."""

from __future__ import annotations

import ipaddress
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from mirror.errors import CircuitOpen, ConfigError
from mirror.reference import validate_repository

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# host[:port]: a DNS name or IPv4 address, or an IPv6 address in brackets
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (with or without a port)."""
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _ascii_host(host: str, text: str) -> str:
    """An internationalised host name in its IDNA (ASCII) form; why not, if it has none."""
    if host.isascii():
        return host
    name, colon, port = host.partition(":")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise ConfigError(f"not a registry address: {text!r}: {error}") from None
    return f"{ascii_name}{colon}{port}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A registry's base URL. TLS unless the registry is on loopback or marked insecure."""

    host: str
    scheme: str = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @classmethod
    def parse(cls, text: str, *, insecure: bool = False) -> Endpoint:
        """`host[:port]` or `https://host[:port]`; `http://` only for loopback or insecure."""
        endpoint, prefix = cls.parse_with_prefix(text, insecure=insecure)
        if prefix:
            raise ConfigError(f"a registry address has no path: {text!r}")
        return endpoint

    @classmethod
    def parse_with_prefix(cls, text: str, *, insecure: bool = False) -> tuple[Endpoint, str]:
        """Like `parse`, also accepting a repository path prefix: `host/prefix`."""
        if "://" not in text:
            host, _, prefix = text.strip("/").partition("/")
            scheme = "https"
        else:
            parts = urlsplit(text)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"not a registry address: {text!r}")
            if parts.query or parts.fragment:
                raise ConfigError(f"not a registry address: {text!r}")
            if "@" in parts.netloc:
                raise ConfigError(
                    f"not a registry address: {text!r}: credentials do not go in the address "
                    "(use username and password_env in mirror.yaml, or docker login)"
                )
            host, scheme, prefix = parts.netloc, parts.scheme, parts.path.strip("/")
        host = _ascii_host(host, text)
        if not _HOST.fullmatch(host):
            raise ConfigError(f"not a registry address: {text!r}")
        port = host.rpartition("]")[2].rpartition(":")[2] if ":" in host.rpartition("]")[2] else ""
        if port and not 0 < int(port) < 65536:
            raise ConfigError(f"not a registry address: {text!r}: port {port} is not 1-65535")
        if port == "443" and scheme == "https":  # one name per registry: `host:443` is `host`
            host = host[: -len(port) - 1]
        if scheme == "http" and not (insecure or is_loopback(host)):
            raise ConfigError(
                f"refusing plain http to {host}: only loopback registries may use http "
                "unless the registry is marked insecure in the config"
            )
        if prefix:
            validate_repository(prefix)
        return cls(host=host.lower(), scheme=scheme), prefix

    def __str__(self) -> str:
        return self.host if self.scheme == "https" else self.url


def registry_name(text: str) -> str:
    """The one name of the registry `text` addresses, however it is spelled: no scheme,
    no `:443`, lower case, no trailing slash (`HTTPS://Registry.local:443/` ->
    `registry.local`). What the ledger and the config's `registries` are keyed by."""
    return Endpoint.parse(text.rstrip("/"), insecure=True).host


class RetryCounts:
    """How many requests were sent again, and how many answers were `429 Too Many
    Requests`, since the process started (the service exports them as metrics)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries = 0
        self.throttled = 0

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def answered(self, status: int) -> None:
        if status == 429:
            with self._lock:
                self.throttled += 1


RETRIES = RetryCounts()


class Breaker:
    """Stops sending to a registry that keeps failing (a circuit breaker).

    After `threshold` failed requests in a row (no answer at all, or a 5xx), every
    request fails at once with `CircuitOpen` for `cooldown` seconds, so that a dead or
    stalled registry ends a run quickly instead of each transfer retrying on its own;
    after the cooldown one request may try again, and an answer closes the circuit.
    Shared by every thread talking to one registry.
    """

    def __init__(
        self,
        threshold: int = 6,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._last = ""
        self._open_until = 0.0

    def check(self, registry: str) -> None:
        """Raise `CircuitOpen` while the circuit is open."""
        with self._lock:
            if self._failures < self.threshold:
                return
            now = self._clock()
            if now < self._open_until:
                raise CircuitOpen(
                    f"cannot reach {registry}: {self._last} ({self._failures} failed requests "
                    f"in a row; not trying again for {self._open_until - now:.0f} s)"
                )
            self._open_until = now + self.cooldown  # half open: this request may try

    def failed(self, reason: str) -> None:
        with self._lock:
            self._failures += 1
            self._last = reason
            if self._failures == self.threshold:
                self._open_until = self._clock() + self.cooldown

    def answered(self, status: int) -> None:
        if status >= 500:
            self.failed(f"HTTP {status}")
            return
        with self._lock:
            self._failures = 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries with exponential backoff and jitter; `Retry-After` wins when present."""

    attempts: int = 4
    backoff: float = 0.25
    max_delay: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if response is not None:
            after = retry_after(response)
            if after is not None:
                return min(after, self.max_delay)
        base = self.backoff * 2.0 ** (attempt - 1)
        return min(base * (0.5 + random.random()), self.max_delay)  # noqa: S311

    def retryable(self, response: httpx.Response) -> bool:
        return response.status_code in RETRY_STATUSES


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = response.headers.get("Date")
    now = parsedate_to_datetime(date) if date else None
    if now is None:
        return None
    return max(0.0, (when - now).total_seconds())

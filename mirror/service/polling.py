"""What every poller of the service shares: conditional GETs, and backing off after a
failure without ever stopping its schedule.

A source that fails (unreachable, an error status, a body that does not parse) is
logged once per failure and asked again after a delay that doubles, up to `ceiling`;
the first success resets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from mirror.logs import get_logger


@dataclass
class Backoff:
    """When a failing source may be asked again."""

    base: float
    ceiling: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    _not_before: float = field(default=0.0, repr=False)

    def due(self) -> bool:
        return self.clock() >= self._not_before

    def failed(self, what: str, error: str) -> None:
        self.failures += 1
        delay = min(self.base * 2 ** (self.failures - 1), self.ceiling)
        self._not_before = self.clock() + delay
        get_logger().warning(f"{what}.failed", error=error, retry_in=round(delay, 1))

    def succeeded(self) -> None:
        self.failures = 0
        self._not_before = 0.0


@dataclass
class Conditional:
    """A GET that sends back the `ETag` (and `Last-Modified`) of the last answer, so an
    unchanged resource costs a `304` and no body."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    modified: str | None = None

    def get(self, client: httpx.Client) -> bytes | None:
        """The new body, or None when the resource has not changed; raises
        `httpx.HTTPError` on a failure or an error status."""
        headers = dict(self.headers)
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.modified:
            headers["If-Modified-Since"] = self.modified
        response = client.get(self.url, headers=headers)
        if response.status_code == 304:
            return None
        response.raise_for_status()
        self.etag = response.headers.get("ETag") or self.etag
        self.modified = response.headers.get("Last-Modified") or self.modified
        return response.content


def poller_client() -> httpx.Client:
    """An HTTP client for the release signals: TLS verified, redirects followed (aka.ms
    redirects), proxies from the environment, short timeouts."""
    return httpx.Client(
        follow_redirects=True, timeout=httpx.Timeout(20.0), headers={"User-Agent": "mirror"}
    )

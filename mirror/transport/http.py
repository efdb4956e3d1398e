"""The `httpx.Client` mirror talks to registries with.

Over mirror's own wire (`wire.Transport`), redirects followed (blob downloads go to
storage hosts), no cookies, and one client per worker thread (`PerThread`), so that
threads never contend for one connection pool.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mirror.transport.tls import context_for
from mirror.transport.wire import Transport

CONNECT_TIMEOUT = 10.0  # seconds to open a connection
READ_TIMEOUT = 30.0  # seconds to the first byte of an answer, and between two chunks


def http_client(
    *,
    auth: httpx.Auth | None = None,
    connections: int = 2,
    verify: ssl.SSLContext | None = None,
    addresses: Mapping[tuple[str, int], tuple[str, int]] | None = None,
) -> httpx.Client:
    """A Client tuned for registries: mirror's own wire (`wire.Transport`, keeping up
    to `connections` idle connections per origin), redirects followed (blob downloads
    go to storage hosts), no cookies. `verify` is the TLS context (default: certifi's
    bundle); `addresses` maps a (host, port) to the address dialled for it."""
    context = verify or context_for()
    return CookielessClient(
        auth=auth,
        transport=Transport(verify=context, keep=connections, addresses=addresses),
        follow_redirects=True,
        # connect; read: the first byte of an answer, and between two chunks of a body
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, pool=None),
        headers={"User-Agent": "mirror"},
    )


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass  # Set-Cookie is ignored

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass  # no Cookie header is ever sent


class CookielessClient(httpx.Client):
    """An `httpx.Client` that neither stores nor sends cookies.

    The distribution API does not use them (Docker's and containers/image's clients
    keep none), and reading every response's headers for them was an eighth of the
    CPU time httpx spends per request.
    """

    def __init__(self, **options: Any) -> None:
        self._no_cookies = _NoCookies()
        super().__init__(**options)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        pass  # the store keeps nothing, so there is nothing to set


class PerThread:
    """One `httpx.Client` for each thread that asks, all built by `factory`.

    Threads sharing one client contend for its connection pool's lock (and it polls
    every idle connection under that lock); a client per worker thread, each with
    its own keep-alive connection, avoids that. The clients share one `httpx.Auth`
    when the factory gives them the same one, and so share its tokens.
    """

    def __init__(self, factory: Callable[[], httpx.Client]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

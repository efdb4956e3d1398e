"""The HTTP client mirror talks to registries with (a real uvicorn server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.types import Receive, Scope, Send

from mirror.transport.http import http_client
from tests.support.entra import BackgroundServer

received: list[dict[bytes, bytes]] = []


async def sets_a_cookie(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request with a `Set-Cookie`, and records the request's headers."""
    assert scope["type"] == "http"
    received.append(dict(scope["headers"]))
    headers = [(b"set-cookie", b"session=abc; Path=/"), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    background = BackgroundServer(sets_a_cookie)
    background.start()
    yield background
    background.stop()


def test_cookies_are_neither_kept_nor_sent(server: BackgroundServer) -> None:
    received.clear()
    with http_client() as client:
        first = client.get(f"{server.url}/v2/")
        second = client.get(f"{server.url}/v2/")
        assert first.headers["set-cookie"].startswith("session=")
        assert second.status_code == 200
        assert not client.cookies
    assert len(received) == 2
    assert b"cookie" not in received[1]

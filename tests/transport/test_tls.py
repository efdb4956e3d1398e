"""TLS to registries: verification is on, the trust store is read only when TLS is spoken.

The https server is uvicorn with a certificate from the test CA (tests/support/entra.py),
answering the API version check like a registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mirror.engine import connect
from mirror.engine.connect import open_store
from mirror.errors import Unreachable
from mirror.settings.config import Config
from mirror.settings.registries import RegistrySettings
from mirror.transport.endpoint import RETRIES
from mirror.transport.registry import RegistryClient
from mirror.transport.tls import TrustOnFirstUse, context_for
from tests.support.entra import BackgroundServer, TestCA
from tests.support.registry import Registry


async def version_check(scope: Scope, receive: Receive, send: Send) -> None:
    """`GET /v2/` answered 200 with `{}`, as a registry does."""
    assert scope["type"] == "http"
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, Path]]:
    bundle, cert, key = TestCA.shared().write(tmp_path_factory.mktemp("tls"))
    server = BackgroundServer(version_check, tls=(cert, key))
    server.start()
    yield server, bundle
    server.stop()


def registry_store(url: str, config: Config) -> RegistryClient:
    store = open_store(url, config)
    assert isinstance(store, RegistryClient)
    return store


def test_a_registry_signed_by_the_configured_ca_is_trusted(
    tls_server: tuple[BackgroundServer, Path],
) -> None:
    server, bundle = tls_server
    host = server.url.removeprefix("https://")
    config = Config(registries={host: RegistrySettings(ca_bundle=bundle)})
    store = registry_store(server.url, config)
    try:
        store.ping()
    finally:
        store.close()


def test_an_untrusted_certificate_is_refused(tls_server: tuple[BackgroundServer, Path]) -> None:
    server, _ = tls_server
    store = registry_store(server.url, Config())  # certifi's bundle: the test CA is not in it
    retries = RETRIES.retries
    try:
        with pytest.raises(Unreachable, match="TLS failed"):
            store.ping()
    finally:
        store.close()
    assert RETRIES.retries == retries  # a certificate that failed is not asked again


def test_the_context_verifies_and_loads_its_bundle_at_the_first_handshake(
    tls_server: tuple[BackgroundServer, Path],
) -> None:
    server, bundle = tls_server
    context = TrustOnFirstUse.verifying(bundle)
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0

    with httpx.Client(verify=context) as client:
        assert client.get(f"{server.url}/v2/").status_code == 200
    assert context.cert_store_stats()["x509_ca"] == 1


def test_a_plain_http_registry_never_reads_a_trust_store(upstream: Registry) -> None:
    context_for.cache_clear()  # a fresh shared context, untouched by other tests
    store = registry_store(upstream.url, Config())
    try:
        store.ping()
    finally:
        store.close()
    context = connect.tls_context(RegistrySettings())  # the one the store's clients use
    assert context.cert_store_stats()["x509_ca"] == 0

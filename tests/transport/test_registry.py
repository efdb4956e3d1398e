"""The registry client against a real registry, with a fault-injecting proxy where the
protocol edge cases (429, 5xx, dropped connections, redirects to a storage host,
truncated bodies) have to be produced on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mirror.engine.sync import sync
from mirror.errors import DigestMismatch, NotFound, RegistryError, Unreachable
from mirror.governance.selection import select_all
from mirror.manifest import DOCKER_MANIFEST_LIST, OCI_INDEX
from mirror.transport.endpoint import Endpoint, RetryPolicy, retry_after
from mirror.transport.http import http_client
from mirror.transport.registry import RegistryClient
from tests.support.faults import Fault, FaultProxy, StorageHost
from tests.support.images import Seeder
from tests.support.registry import Registry
from tests.support.reporting import Quiet


@pytest.fixture
def proxy(upstream: Registry) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream.url).start()
    yield proxy
    proxy.stop()


def client(url: str, *, attempts: int = 3, auth: httpx.Auth | None = None) -> RegistryClient:
    retry = RetryPolicy(attempts=attempts, backoff=0.01, max_delay=0.05)
    return RegistryClient(Endpoint.parse(url), lambda: http_client(auth=auth), retry)


def test_tag_listing_follows_link_pagination(proxy: FaultProxy) -> None:
    """distribution 2.8 never paginates, so the proxy serves the pages (as MCR does,
    with a relative `Link`)."""
    page = '{"name": "agent", "tags": [%s]}'
    proxy.add(
        Fault(
            r"/tags/list\?n=1000$",
            status=200,
            headers={"Link": '</v2/agent/tags/list?n=1000&last=1.5.1>; rel="next"'},
            body=(page % '"1.5.0", "1.5.1"').encode(),
        )
    )
    proxy.add(Fault(r"last=1.5.1", status=200, body=(page % '"1.5"').encode()))
    registry = client(proxy.url)
    assert registry.list_tags("agent") == ["1.5.0", "1.5.1", "1.5"]
    assert [path for _, path, _ in proxy.seen] == [
        "/v2/agent/tags/list?n=1000",
        "/v2/agent/tags/list?n=1000&last=1.5.1",
    ]
    registry.close()


def test_resolve_and_fetch_keep_the_index_and_its_digest(
    upstream: Registry, seeder: Seeder
) -> None:
    docker = seeder.push_release("agent", "1.5.0")
    oci = seeder.push_release("agent", "1.5.1", oci=True, attestation=True)
    registry = client(upstream.url)
    for pushed, media_type in ((docker, DOCKER_MANIFEST_LIST), (oci, OCI_INDEX)):
        descriptor = registry.resolve("agent", pushed.tag)
        assert descriptor is not None
        assert (descriptor.digest, descriptor.media_type) == (pushed.digest, media_type)
        manifest = registry.get_manifest("agent", pushed.tag)
        assert manifest.digest == pushed.digest
        assert sorted(c.digest for c in manifest.children()) == sorted(pushed.children)
    assert registry.resolve("agent", "9.9.9") is None
    with pytest.raises(DigestMismatch):
        registry.get_manifest("agent", "1.5.0", oci.digest)
    registry.close()


def test_unknown_repository_is_named_in_the_error(upstream: Registry) -> None:
    registry = client(upstream.url)
    with pytest.raises(NotFound, match="repository not found for the tags of nothing-here"):
        registry.list_tags("nothing-here")
    registry.close()


def test_429_and_503_are_retried(upstream: Registry, seeder: Seeder, proxy: FaultProxy) -> None:
    seeder.push_release("agent", "1.5.0")
    proxy.add(Fault(r"/tags/list", status=429, headers={"Retry-After": "0"}, times=1))
    proxy.add(Fault(r"/manifests/1.5.0", method="HEAD", status=503, times=2))
    registry = client(proxy.url)
    assert registry.list_tags("agent") == ["1.5.0"]
    assert registry.resolve("agent", "1.5.0") is not None
    seen = [(method, path.split("?")[0]) for method, path, _ in proxy.seen]
    assert seen.count(("GET", "/v2/agent/tags/list")) == 2
    assert seen.count(("HEAD", "/v2/agent/manifests/1.5.0")) == 3
    registry.close()


def test_retries_end_with_the_last_error(upstream: Registry, proxy: FaultProxy) -> None:
    proxy.add(
        Fault(
            r"/tags/list", status=503, body=b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}'
        )
    )
    registry = client(proxy.url, attempts=2)
    with pytest.raises(RegistryError, match=r"HTTP 503 \(UNAVAILABLE: busy\)") as caught:
        registry.list_tags("agent")
    assert caught.value.status == 503
    registry.close()


def test_a_dropped_connection_is_retried(
    upstream: Registry, seeder: Seeder, proxy: FaultProxy
) -> None:
    seeder.push_release("agent", "1.5.0")
    proxy.add(Fault(r"/tags/list", drop=True, times=1))
    registry = client(proxy.url)
    assert registry.list_tags("agent") == ["1.5.0"]
    registry.close()


def test_an_unreachable_registry_says_so() -> None:
    from tests.support.registry import free_port

    registry = client(f"http://127.0.0.1:{free_port()}", attempts=2)
    with pytest.raises(Unreachable, match=r"cannot reach http://127\.0\.0\.1:\d+"):
        registry.ping()
    registry.close()


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    policy = RetryPolicy(max_delay=30)
    assert policy.delay(1, httpx.Response(429, headers={"Retry-After": "7"})) == 7
    assert policy.delay(1, httpx.Response(429, headers={"Retry-After": "600"})) == 30
    dated = httpx.Response(
        503,
        headers={
            "Retry-After": "Wed, 21 Oct 2026 07:28:05 GMT",
            "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
        },
    )
    assert retry_after(dated) == 5
    assert retry_after(httpx.Response(429)) is None
    assert 0 < policy.delay(3) <= 30


def test_blob_downloads_follow_redirects_without_credentials(
    upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder, proxy: FaultProxy
) -> None:
    """Like MCR's CDN and ACR's blob storage: the blob GET answers 307 to another host."""
    pushed = seeder.push_release("agent", "1.5.0")
    storage = StorageHost(upstream.url).start()
    proxy.add(Fault(r"/blobs/sha256:", redirect=storage.url))
    source = client(proxy.url, auth=httpx.BasicAuth("reader", "s3cret"))
    destination = client(target.url)
    try:
        outcome = sync(source, destination, ["agent"], Quiet(), select=select_all)
    finally:
        source.close()
        destination.close()
        storage.stop()
    assert outcome.ok
    assert target_seeder.digest_of("agent", "1.5.0") == pushed.digest
    assert len(storage.requests) == len(set(pushed.blobs))
    assert all("Authorization" not in headers for headers in storage.requests)
    assert any("Authorization" in headers for _, _, headers in proxy.seen)


def test_a_truncated_blob_is_fetched_again(
    upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder, proxy: FaultProxy
) -> None:
    pushed = seeder.push_release("agent", "1.5.0", layer_size=200_000)
    app_layer = pushed.blobs[2]
    fault = proxy.add(Fault(rf"/blobs/{app_layer}", truncate_at=1000, times=1))
    source = client(proxy.url)
    destination = client(target.url)
    outcome = sync(source, destination, ["agent"], Quiet(), select=select_all)
    source.close()
    destination.close()
    assert outcome.ok, outcome.result.failures
    assert fault.fired == 1
    assert target_seeder.digest_of("agent", "1.5.0") == pushed.digest
    assert target_seeder.has_blob("agent", app_layer)


def test_relative_upload_locations_are_followed(
    tmp_path: Path, upstream: Registry, seeder: Seeder
) -> None:
    """ACR answers uploads with relative `Location` headers."""
    pushed = seeder.push_release("agent", "1.5.0")
    relative = Registry(tmp_path / "relative", "relative", {"http": {"relativeurls": True}})
    relative.start()
    try:
        source, destination = client(upstream.url), client(relative.url)
        outcome = sync(source, destination, ["agent"], Quiet(), select=select_all)
        source.close()
        destination.close()
        mirror = Seeder(relative.url)
        assert outcome.ok, outcome.result.failures
        assert mirror.digest_of("agent", "1.5.0") == pushed.digest
        mirror.close()
    finally:
        relative.stop()

"""Syncing into Azure Container Registry, against the ACR stand-in.

Real here: the registry (Debian's docker-registry) validating every bearer token and
refusing what a token's actions do not allow. Stand-ins (ACR and Entra ID cannot run
here, see tests/support/acr.py): the token exchange and token endpoints, the
`/acr/v1` metadata API with tag locks, and Entra ID, whose tokens come from an
injected `TokenCredential`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mirror.engine.connect import acr_metadata, open_store
from mirror.engine.sync import sync
from mirror.errors import AuthenticationError
from mirror.governance.selection import select_all
from mirror.settings.config import Config
from mirror.transport.registry import RegistryClient
from tests.conftest import client_for
from tests.support.acr_fixtures import AcrSetup
from tests.support.images import Pushed, Seeder
from tests.support.registry import Registry
from tests.support.reporting import Quiet

REPOS = ("azureiotedge-agent", "azureiotedge-hub")


def acr_config(acr: AcrSetup) -> Config:
    return Config.model_validate({"registries": {acr.name: {"acr": True}}})


@pytest.fixture
def releases(seeder: Seeder) -> list[Pushed]:
    pushed = [seeder.push_release(repo, v) for v in ("1.5.0", "1.5.1") for repo in REPOS]
    for repo in REPOS:
        seeder.tag(repo, "1.5.1", "1.5")
    return pushed


@pytest.fixture
def source(upstream: Registry) -> Iterator[RegistryClient]:
    client = client_for(upstream)
    yield client
    client.close()


def open_acr(acr: AcrSetup, app: object, *, push: bool) -> RegistryClient:
    store = open_store(acr.url, acr_config(acr), push=push, credential=acr.credential(app))  # type: ignore[arg-type]
    assert isinstance(store, RegistryClient)
    return store


def run(source: RegistryClient, target: RegistryClient, acr: AcrSetup):  # type: ignore[no-untyped-def]
    return sync(
        source,
        target,
        REPOS,
        Quiet(),
        select=select_all,
        metadata=acr_metadata(target, acr_config(acr)),
    )


def test_sync_into_acr_locks_specific_tags_and_is_then_a_noop(
    acr: AcrSetup, source: RegistryClient, releases: list[Pushed]
) -> None:
    target = open_acr(acr, acr.push, push=True)
    outcome = run(source, target, acr)
    assert outcome.ok, outcome.result.failures

    reader = open_acr(acr, acr.pull, push=False)
    for release in releases:
        descriptor = reader.resolve(release.repository, release.tag)
        assert descriptor is not None and descriptor.digest == release.digest
        for child in release.children:
            assert reader.resolve(release.repository, child) is not None
    for repo in REPOS:
        assert reader.resolve(repo, "1.5") == reader.resolve(repo, "1.5.1")

    service = acr.service
    locked = sorted(outcome.locked)
    assert locked == sorted((repo, tag) for repo in REPOS for tag in ("1.5.0", "1.5.1"))
    for release in releases:
        assert service.attributes(release.repository, release.tag).locked
        assert service.attributes(release.repository, release.digest).locked
        for child in release.children:
            assert service.attributes(release.repository, child).locked
    for repo in REPOS:
        assert not service.attributes(repo, "1.5").locked

    again = run(source, target, acr)
    assert again.ok
    assert not any(step.pending for step in again.steps)
    assert again.locks == [] and again.result.uploaded == 0
    target.close()
    reader.close()


def test_a_pull_identity_is_refused_a_push_by_the_registry(
    acr: AcrSetup, source: RegistryClient, releases: list[Pushed]
) -> None:
    target = open_acr(acr, acr.pull, push=True)
    mark = len(acr.service.registry.requests())
    with pytest.raises(AuthenticationError):
        target.start_upload("azureiotedge-agent")
    refused = [
        r
        for r in acr.service.registry.requests_since(mark)
        if r.method == "POST" and "/blobs/uploads/" in r.path
    ]
    assert refused and all(r.status == 401 for r in refused)
    outcome = run(source, target, acr)
    assert not outcome.ok
    refusals = [m for _, m in outcome.result.failures if "not authorized" in m]
    assert len(refusals) == 1, outcome.result.failures  # reported once, then stopped
    assert outcome.result.uploaded == 0 and outcome.result.tags == []
    target.close()


def test_the_token_exchange_happens_once_per_refresh_token(
    acr: AcrSetup, source: RegistryClient, releases: list[Pushed]
) -> None:
    credential = acr.credential(acr.push)
    target = open_store(acr.url, acr_config(acr), push=True, credential=credential)
    assert isinstance(target, RegistryClient)
    acr.service.counters.reset()
    outcome = run(source, target, acr)
    assert outcome.ok, outcome.result.failures
    counters = acr.service.counters
    assert counters.exchanges == 1
    assert credential.calls == 1
    requests = len(counters.requests)
    # One access token per distinct scope (two repositories, a mount, the metadata
    # API), not one per request.
    assert counters.tokens <= 8 < requests
    target.close()


def test_an_expired_refresh_token_is_renewed_mid_sync(
    acr: AcrSetup, source: RegistryClient, releases: list[Pushed]
) -> None:
    """After the third blob upload every token issued so far stops working."""
    service = acr.service
    uploads = []

    def expire_after_three(record: object) -> None:
        if getattr(record, "method", "") == "PUT" and "/blobs/uploads/" in getattr(
            record, "path", ""
        ):
            uploads.append(record)
            if len(uploads) == 3:
                service.expire_refresh_tokens()
                service.expire_access_tokens()

    service.hooks.append(expire_after_three)
    target = open_acr(acr, acr.push, push=True)
    service.counters.reset()
    outcome = run(source, target, acr)
    assert outcome.ok, outcome.result.failures
    assert service.counters.exchanges == 2
    reader = open_acr(acr, acr.pull, push=False)
    for release in releases:
        descriptor = reader.resolve(release.repository, release.tag)
        assert descriptor is not None and descriptor.digest == release.digest
    target.close()
    reader.close()

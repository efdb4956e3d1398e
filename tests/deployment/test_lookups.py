"""Pins looked up in the target registry: the specific tag and the digest a tag means there
(real registries)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mirror.deployment.lookups import RegistryLookup, specific_candidates
from mirror.deployment.resolvers import Target
from mirror.reference import ImageReference
from mirror.transport.registry import RegistryClient
from tests.conftest import client_for
from tests.support.images import Seeder
from tests.support.registry import Registry

AGENT = "azureiotedge-agent"


def source(tag: str, repository: str = AGENT) -> ImageReference:
    return ImageReference("mcr.microsoft.com", repository, tag)


@pytest.mark.parametrize(
    ("rolling", "tags", "expected"),
    [
        (
            "1.5",
            ["1.4.9", "1.5", "1.5.2", "1.5.10", "1.5.3-linux-amd64", "1.6.0", "latest"],
            ["1.5.10", "1.5.2"],
        ),
        (
            "1.5-linux-arm32v7",
            ["1.5.1-linux-arm32v7", "1.5.2", "1.5.2-linux-amd64"],
            ["1.5.1-linux-arm32v7"],
        ),
        ("1.6", ["1.6.0-rc2", "1.6.0", "1.6.1-rc1"], ["1.6.1-rc1", "1.6.0", "1.6.0-rc2"]),
        ("latest", ["1.4.9", "1.5", "1.5.2", "nightly"], ["1.5.2", "1.4.9"]),
        ("1.5.3", ["1.5.3"], []),
    ],
)
def test_specific_candidates(rolling: str, tags: list[str], expected: list[str]) -> None:
    assert specific_candidates(rolling, tags) == expected


@pytest.fixture
def client(target: Registry) -> Iterator[RegistryClient]:
    store = client_for(target)
    yield store
    store.close()


@pytest.mark.registry
def test_lookup_finds_the_specific_tag_and_the_digest(
    target: Registry, target_seeder: Seeder, client: RegistryClient
) -> None:
    repository = f"edge/{AGENT}"
    target_seeder.push_release(repository, "1.5.0")
    newest = target_seeder.push_release(repository, "1.5.1", oci=True, attestation=True)
    target_seeder.push_release(repository, "1.4.9")
    target_seeder.tag(repository, "1.5.1", "1.5")
    target_seeder.push_release(repository, "1.6", version="1.6.0")
    lookup = RegistryLookup(client, Target(target.address, "edge"))

    assert lookup.specific_tag(source("1.5")) == "1.5.1"
    assert lookup.index_digest(source("1.5")) == newest.digest
    assert lookup.index_digest(source("1.5.0")) == target_seeder.digest_of(repository, "1.5.0")
    assert lookup.specific_tag(source("1.6")) is None  # no specific 1.6.x tag in the mirror
    assert lookup.specific_tag(source("1.7")) is None
    assert lookup.index_digest(source("1.7")) is None
    assert lookup.specific_tag(source("1.5", "azureiotedge-hub")) is None


@pytest.mark.registry
def test_lookup_asks_the_registry_once_per_question(
    target: Registry, target_seeder: Seeder, client: RegistryClient
) -> None:
    target_seeder.push_release(AGENT, "1.5.0")
    target_seeder.push_release(AGENT, "1.5.1")
    target_seeder.tag(AGENT, "1.5.0", "1.5")  # rolled back: the newest is not the match
    lookup = RegistryLookup(client, Target(target.address))
    rolled_back = target_seeder.digest_of(AGENT, "1.5.0")
    mark = len(target.requests())

    assert lookup.specific_tag(source("1.5")) == "1.5.0"
    first = target.requests_since(mark)
    assert [r.method for r in first] == ["HEAD", "GET", "HEAD", "HEAD"]
    mark = len(target.requests())
    assert lookup.specific_tag(source("1.5")) == "1.5.0"
    assert lookup.index_digest(source("1.5")) == rolled_back
    assert target.requests_since(mark) == []

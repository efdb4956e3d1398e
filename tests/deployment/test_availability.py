"""Rewritten images checked in the target: present, and on every platform the fleet needs
(real registries)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.deployment.availability import AvailabilityCheck, normalise
from mirror.errors import Unreachable
from mirror.manifest import Platform
from mirror.reference import ImageReference
from mirror.transport.registry import RegistryClient
from tests.conftest import client_for
from tests.support.images import OCI_CONFIG, OCI_IMAGE, OCI_LAYER, Seeder, canonical
from tests.support.registry import Registry, free_port

AGENT = "azureiotedge-agent"
ALL = ("linux/amd64", "linux/arm64", "linux/arm/v7")


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/amd64", "linux/amd64"),
    ],
)
def test_platforms_are_compared_as_containerd_does(written: str, normal: str) -> None:
    assert normalise(Platform.parse(written)) == Platform.parse(normal)


@pytest.fixture
def client(target: Registry) -> Iterator[RegistryClient]:
    store = client_for(target)
    yield store
    store.close()


@pytest.mark.registry
def test_availability_of_a_complete_index(target_seeder: Seeder, client: RegistryClient) -> None:
    pushed = target_seeder.push_release(AGENT, "1.5.1", oci=True, attestation=True)
    check = AvailabilityCheck(client, ALL)
    by_tag = check(ImageReference("r", AGENT, "1.5.1"))
    by_digest = check(ImageReference("r", AGENT, digest=pushed.digest))
    for found in (by_tag, by_digest):
        assert found.ok, found.message
        assert found.digest == pushed.digest
        assert found.platforms == ALL  # the attestations are not platforms
        assert found.message == ""


@pytest.mark.registry
def test_availability_reports_a_missing_platform(
    target_seeder: Seeder, client: RegistryClient
) -> None:
    target_seeder.push_release(
        AGENT, "1.5.1", platforms=(("linux", "amd64", None), ("linux", "arm64", None))
    )
    found = AvailabilityCheck(client, ALL)(ImageReference("r", AGENT, "1.5.1"))
    assert not found.ok
    assert found.missing == ("linux/arm/v7",)
    assert found.message == (
        "missing platform linux/arm/v7 in the target (it has linux/amd64, linux/arm64)"
    )
    only_intel = AvailabilityCheck(client, ("linux/amd64",))
    assert only_intel(ImageReference("r", AGENT, "1.5.1")).ok


@pytest.mark.registry
def test_availability_of_a_single_image_reads_its_platform(
    target_seeder: Seeder, client: RegistryClient
) -> None:
    pushed = target_seeder.push_release(AGENT, "1.5.1")
    target_seeder.tag(AGENT, pushed.children[1], "arm64-only")  # linux/arm64
    reference = ImageReference("r", AGENT, "arm64-only")
    assert AvailabilityCheck(client, ("linux/arm64/v8",))(reference).ok
    found = AvailabilityCheck(client, ALL)(reference)
    assert found.platforms == ("linux/arm64",)
    assert found.missing == ("linux/amd64", "linux/arm/v7")


@pytest.mark.registry
def test_availability_of_a_missing_image(target_seeder: Seeder, client: RegistryClient) -> None:
    target_seeder.push_release(AGENT, "1.5.1")
    check = AvailabilityCheck(client, ALL)
    for reference in (
        ImageReference("r", AGENT, "1.5.2"),
        ImageReference("r", "azureiotedge-hub", "1.5.1"),
        ImageReference("r", AGENT, digest="sha256:" + "0" * 64),
    ):
        found = check(reference)
        assert not found.ok
        assert found.message == "not in the target: mirror it first"


def test_availability_when_the_registry_cannot_be_reached(tmp_path: Path) -> None:
    nobody = Registry(tmp_path, port=free_port())  # never started
    store = client_for(nobody)
    try:
        with pytest.raises(Unreachable, match=f"cannot reach http://{nobody.address}"):
            AvailabilityCheck(store, ALL)(ImageReference("r", AGENT, "1.5"))
    finally:
        store.close()


@pytest.mark.registry
def test_availability_of_an_image_whose_platform_cannot_be_told(
    target_seeder: Seeder, client: RegistryClient
) -> None:
    config = b"not a JSON config"
    layer = b"layer"
    image = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE,
            "config": {
                "mediaType": OCI_CONFIG,
                "size": len(config),
                "digest": target_seeder.push_blob(AGENT, config),
            },
            "layers": [
                {
                    "mediaType": OCI_LAYER,
                    "size": len(layer),
                    "digest": target_seeder.push_blob(AGENT, layer),
                }
            ],
        }
    )
    target_seeder.push_manifest(AGENT, "odd", image, OCI_IMAGE)
    found = AvailabilityCheck(client, ("linux/amd64",))(ImageReference("r", AGENT, "odd"))
    assert found.missing == ("linux/amd64",)
    assert found.message == "missing platform linux/amd64 in the target (it has none)"

"""Manifests keep their bytes, check their digest, and list what they reference."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mirror import digest
from mirror.errors import DigestMismatch, ManifestError
from mirror.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    Platform,
)


def d(name: str) -> str:
    return digest.compute(name.encode())


def image(media_type: str = DOCKER_MANIFEST, layers: list[dict[str, Any]] | None = None) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 3,
                "digest": d("config"),
            },
            "layers": layers
            if layers is not None
            else [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 5,
                    "digest": d("layer"),
                }
            ],
        },
        indent=3,
    ).encode()


def test_raw_bytes_and_digest_are_kept() -> None:
    raw = image()
    manifest = Manifest.parse(raw, None, digest.compute(raw))
    assert manifest.raw is raw
    assert manifest.digest == digest.compute(raw)
    assert manifest.media_type == DOCKER_MANIFEST
    assert manifest.descriptor().size == len(raw)


def test_wrong_digest_is_refused() -> None:
    with pytest.raises(DigestMismatch):
        Manifest.parse(image(), None, d("something else"))


def test_blobs_are_config_then_layers_without_foreign_layers() -> None:
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "size": 100,
        "digest": d("windows base"),
        "urls": ["https://mcr.microsoft.com/v2/windows/blobs/x"],
    }
    normal = {
        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "size": 5,
        "digest": d("layer"),
    }
    manifest = Manifest.parse(image(layers=[foreign, normal]))
    assert [blob.digest for blob in manifest.blobs()] == [d("config"), d("layer")]


def test_index_children_put_attestations_after_the_images_they_describe() -> None:
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "size": 1,
                    "digest": d("att"),
                    "platform": {"os": "unknown", "architecture": "unknown"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "size": 1,
                    "digest": d("arm"),
                    "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
                },
            ],
        }
    ).encode()
    manifest = Manifest.parse(raw)
    children = manifest.children()
    assert [c.digest for c in children] == [d("arm"), d("att")]
    assert children[0].platform == Platform("linux", "arm", "v7")
    assert str(children[0].platform) == "linux/arm/v7"
    assert children[1].is_attestation
    assert manifest.blobs() == []


def test_media_type_from_header_when_the_document_has_none() -> None:
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert Manifest.parse(raw, DOCKER_MANIFEST_LIST).media_type == DOCKER_MANIFEST_LIST
    assert Manifest.parse(raw).media_type == OCI_INDEX


def test_subject_is_read() -> None:
    document = json.loads(image(OCI_MANIFEST))
    document["subject"] = {"mediaType": OCI_MANIFEST, "size": 10, "digest": d("subject")}
    manifest = Manifest.parse(json.dumps(document).encode())
    subject = manifest.subject()
    assert subject is not None and subject.digest == d("subject")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schemaVersion": 1, "fsLayers": []}', "schema 1"),
        (
            b'{"schemaVersion": 2, "mediaType": "application/x-unknown"}',
            "unsupported manifest media type",
        ),
    ],
)
def test_malformed_manifests(raw: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.parse(raw)


def test_malformed_descriptor_names_where() -> None:
    raw = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"size": 1}]}
    ).encode()
    with pytest.raises(ManifestError, match=r"manifests\[0\]"):
        Manifest.parse(raw).children()

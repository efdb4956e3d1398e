"""The OCI image layout store: crash-safe writes and verified reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mirror import digest
from mirror.engine.sync import sync
from mirror.errors import DigestMismatch, NotFound
from mirror.governance.selection import select_all
from mirror.manifest import OCI_MANIFEST, Descriptor, Manifest
from mirror.transport.layout import OciLayout
from tests.conftest import client_for
from tests.support.images import Seeder
from tests.support.registry import Registry
from tests.support.reporting import Quiet

DATA = b"layer bytes" * 1000
BLOB = Descriptor("application/octet-stream", digest.compute(DATA), len(DATA))


def test_a_failed_blob_write_leaves_nothing(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "store", create=True)

    @contextmanager
    def failing() -> Iterator[Iterator[bytes]]:
        def chunks() -> Iterator[bytes]:
            yield DATA[:100]
            raise DigestMismatch(BLOB.digest, "something else")

        yield chunks()

    with pytest.raises(DigestMismatch):
        layout.write_blob("agent", BLOB, failing)
    assert not layout.has_blob("agent", BLOB)
    assert list((tmp_path / "store").rglob(".partial-*")) == []


def test_blobs_are_shared_by_repositories(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "store", create=True)

    @contextmanager
    def source() -> Iterator[Iterator[bytes]]:
        yield iter([DATA])

    assert layout.write_blob("agent", BLOB, source) == "uploaded"
    assert layout.write_blob("hub", BLOB, source, mount_from="agent") == "present"
    with layout.read_blob("hub", BLOB) as chunks:
        assert b"".join(chunks) == DATA


def test_tags_are_named_repository_colon_tag(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "store", create=True)
    raw = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}
    ).encode()
    manifest = Manifest.parse(raw)
    layout.put_manifest("agent", "1.5.3", manifest)
    layout.put_manifest("agent", "1.5", manifest)
    layout.put_manifest("hub", "1.5.3", manifest)
    index = json.loads((tmp_path / "store" / "index.json").read_text())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert sorted(names) == ["agent:1.5", "agent:1.5.3", "hub:1.5.3"]
    fresh = OciLayout(tmp_path / "store")
    assert fresh.list_tags("agent") == ["1.5", "1.5.3"]
    resolved = fresh.resolve("hub", "1.5.3")
    assert resolved is not None and resolved.digest == manifest.digest
    assert fresh.get_manifest("agent", "1.5").raw == raw


def test_a_missing_layout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not an OCI image layout"):
        OciLayout(tmp_path / "nothing").list_tags("agent")


def test_a_corrupt_layout_blob_is_refused_on_import(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    """Bit rot on the carried medium: the import refuses the blob, the tag stays out."""
    pushed = seeder.push_release("agent", "1.5.0")
    source = client_for(upstream)
    export = OciLayout(tmp_path / "carry", create=True)
    assert sync(source, export, ["agent"], Quiet(), select=select_all).ok
    victim = tmp_path / "carry" / "blobs" / "sha256" / pushed.blobs[-1].split(":")[1]
    victim.write_bytes(bytes(b ^ 0x01 for b in victim.read_bytes()))

    importer = client_for(target, push=True)
    outcome = sync(OciLayout(tmp_path / "carry"), importer, ["agent"], Quiet(), select=select_all)
    assert not outcome.ok
    assert any("digest mismatch" in message for _, message in outcome.result.failures)
    assert importer.resolve("agent", "1.5.0") is None
    source.close()
    importer.close()

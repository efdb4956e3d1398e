"""An OCI image layout directory as a source or target (for air-gapped fleets).

One layout holds every mirrored repository: blobs (layers, configs and manifests)
live once in `blobs/<alg>/<hex>`, shared across repositories, and `index.json` names
each tagged manifest with `org.opencontainers.image.ref.name` = `<repository>:<tag>`.

Referrers (signatures, SBOMs, provenance records: manifests with a `subject`) are
kept as the OCI tools keep them in a layout: their manifest in `blobs/`, and an
untagged entry in `index.json` carrying the referrer's `artifactType` and annotations;
the referrers of a digest are the untagged entries whose manifest names it as subject.

Writes are crash-safe: a blob is written to a temporary file, verified, synced and
renamed into place; `index.json` is replaced atomically, and only after everything
the tag needs is on disk.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mirror import digest as _digest
from mirror.errors import ConfigError, ManifestError, NotFound
from mirror.files import write_atomically
from mirror.manifest import OCI_INDEX, Descriptor, Manifest
from mirror.reference import validate_tag
from mirror.referrers import NONE, Referrers
from mirror.transport.store import BlobSource, Written

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
_CHUNK = 1024 * 1024


class OciLayout:
    """An OCI image layout at `root`, created on first write when `create` is set."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        if root.exists() and not root.is_dir():
            raise ConfigError(f"oci:{root}: not a directory (an OCI image layout is one)")
        self.root = root
        self._create = create
        if create:
            self._sweep()
        self._index: dict[str, Any] | None = None
        self._lock = threading.Lock()  # index.json updates from several worker threads

    @property
    def name(self) -> str:
        return f"oci:{self.root}"

    def close(self) -> None:
        return None

    # -- index.json ------------------------------------------------------------

    def _load_index(self) -> dict[str, Any]:
        if self._index is not None:
            return self._index
        path = self.root / "index.json"
        if not path.exists():
            if not self._create:
                raise NotFound(f"{self.name}: not an OCI image layout (no index.json)")
            self._index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            return self._index
        try:
            index = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: unreadable OCI index ({exc})") from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ConfigError(f"{path}: not an OCI image index")
        self._index = index
        return index

    def _write_index(self, index: dict[str, Any]) -> None:
        self._prepare()
        data = json.dumps(index, indent=2).encode() + b"\n"
        write_atomically(self.root / "index.json", [data])

    def _sweep(self) -> None:
        """Remove the temporary files a run that was killed left behind (opened for
        writing, the layout has one writer: the run holding the target's run lock)."""
        for leftover in [*self.root.glob(".*.partial"), *self.root.glob("blobs/*/.*.partial")]:
            leftover.unlink(missing_ok=True)

    def _prepare(self) -> None:
        if not (self.root / "oci-layout").exists():
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomically(self.root / "oci-layout", [json.dumps(LAYOUT_VERSION).encode()])

    def _entries(self, repository: str) -> dict[str, dict[str, Any]]:
        prefix = f"{repository}:"
        found = {}
        for entry in self._load_index()["manifests"]:
            ref = (entry.get("annotations") or {}).get(REF_NAME, "")
            if isinstance(ref, str) and ref.startswith(prefix):
                found[ref[len(prefix) :]] = entry
        return found

    # -- the store interface -----------------------------------------------------

    def list_tags(self, repository: str) -> list[str]:
        return sorted(self._entries(repository))

    def resolve(self, repository: str, reference: str) -> Descriptor | None:
        if _digest.is_digest(reference):
            path = self._blob_path(reference)
            if not path.exists():
                return None
            return (self.get_manifest(repository, reference)).descriptor()
        entry = self._entries(repository).get(reference)
        if entry is None:
            return None
        return Descriptor.from_json(entry, f"{self.name} {repository}:{reference}")

    def get_manifest(
        self, repository: str, reference: str, expected_digest: str | None = None
    ) -> Manifest:
        media_type = None
        digest = reference
        if not _digest.is_digest(reference):
            descriptor = self.resolve(repository, reference)
            if descriptor is None:
                raise NotFound(f"{self.name}: not found: {repository}:{reference}")
            digest, media_type = descriptor.digest, descriptor.media_type
        try:
            raw = self._blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{self.name}: manifest {digest} missing") from None
        return Manifest.parse(raw, media_type, expected_digest or digest)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        path = self._blob_path(manifest.digest)
        if not path.exists():
            self._prepare()
            _write_verified(path, manifest.raw, manifest.digest)
        if _digest.is_digest(reference):
            if reference != manifest.digest:
                raise ManifestError(f"{reference}: manifest bytes hash to {manifest.digest}")
            return
        self._tag(repository, validate_tag(reference), manifest)

    def _tag(self, repository: str, tag: str, manifest: Manifest) -> None:
        with self._lock:
            self._write_tag(repository, tag, manifest)

    def _write_tag(self, repository: str, tag: str, manifest: Manifest) -> None:
        index = self._load_index()
        ref = f"{repository}:{tag}"
        entry = {
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": len(manifest.raw),
            "annotations": {REF_NAME: ref},
        }
        kept = [e for e in index["manifests"] if (e.get("annotations") or {}).get(REF_NAME) != ref]
        updated = {**index, "manifests": [*kept, entry]}
        self._write_index(updated)
        self._index = updated

    # -- referrers ---------------------------------------------------------------

    def referrers(
        self, repository: str, digest: str, artifact_types: Sequence[str] = ()
    ) -> Referrers:
        """The untagged entries of `index.json` whose manifest has `digest` as subject
        (only `artifact_types`, when given)."""
        found = []
        for entry in self._load_index()["manifests"]:
            if REF_NAME in (entry.get("annotations") or {}):
                continue
            descriptor = Descriptor.from_json(entry, f"{self.name} index.json")
            manifest = self.get_manifest(repository, descriptor.digest)
            subject = manifest.subject()
            if subject is not None and subject.digest == digest:
                found.append(descriptor)
        if not found:
            return NONE
        listed = "\n".join(sorted(d.digest for d in found)).encode()
        return Referrers(tuple(found), _digest.compute(listed)).of_types(artifact_types)

    def referrers_changed(
        self, repository: str, digest: str, fingerprint: str, artifact_types: Sequence[str] = ()
    ) -> Referrers | None:
        found = self.referrers(repository, digest, artifact_types)
        return None if found.fingerprint == fingerprint else found

    def put_referrer(self, repository: str, referrer: Manifest) -> None:
        """Store the referrer's manifest and list it, untagged, in `index.json`."""
        self.put_manifest(repository, referrer.digest, referrer)
        with self._lock:
            index = self._load_index()
            if any(e.get("digest") == referrer.digest for e in index["manifests"]):
                return
            entry = referrer.referrer_descriptor().to_json()
            updated = {**index, "manifests": [*index["manifests"], entry]}
            self._write_index(updated)
            self._index = updated

    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        try:
            return self._blob_path(descriptor.digest).stat().st_size == descriptor.size
        except FileNotFoundError:
            return False

    @contextmanager
    def read_blob(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        try:
            handle = self._blob_path(descriptor.digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"{self.name}: blob {descriptor.digest} missing") from None
        with handle:
            yield _chunks(handle)

    def write_blob(
        self,
        repository: str,
        descriptor: Descriptor,
        source: BlobSource,
        mount_from: str | None = None,
    ) -> Written:
        """Blobs are shared by every repository of the layout: present is present."""
        if self.has_blob(repository, descriptor):
            return "present"
        self._prepare()
        path = self._blob_path(descriptor.digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with source() as chunks:
            write_atomically(path, chunks)
        return "uploaded"

    def _blob_path(self, digest: str) -> Path:
        algorithm = _digest.algorithm_of(digest)
        return self.root / "blobs" / algorithm / _digest.hex_of(digest)


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


def _write_verified(path: Path, data: bytes, digest: str) -> None:
    _digest.check(data, digest, "manifest")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, [data])

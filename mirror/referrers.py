"""Referrers: manifests whose `subject` is another manifest (signatures, SBOMs,
attestations, mirror's provenance records), and the lists that name them.

A registry lists the referrers of a digest in two ways (OCI distribution spec 1.1):
the referrers API (`GET /v2/<name>/referrers/<digest>`, an image index) or, where it
has no such API, the *referrers tag schema*: an image index tagged `sha256-<hex>`
that the clients pushing referrers keep up to date. Both are an index whose entries
are `Descriptor`s with an `artifactType` and the referrer's annotations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mirror import digest as _digest
from mirror.errors import ManifestError
from mirror.manifest import OCI_INDEX, Descriptor, Manifest

# How deep a chain of referrers is followed (a signature on a signature on an SBOM...).
MAX_DEPTH = 4


def fallback_tag(digest: str) -> str:
    """The referrers tag of `digest` (`sha256:ab..` -> `sha256-ab..`), truncated to the
    128 characters a tag may have."""
    return f"{_digest.algorithm_of(digest)}-{_digest.hex_of(digest)}"[:128]


def is_fallback_tag(tag: str) -> bool:
    """Whether `tag` is a referrers tag (`sha256-<64 hex>`), not an image's tag."""
    algorithm, _, hex_part = tag.partition("-")
    return (
        algorithm == "sha256"
        and len(hex_part) == 64
        and all(c in "0123456789abcdef" for c in hex_part)
    )


@dataclass(frozen=True, slots=True)
class Referrers:
    """The referrers a registry lists for one subject, and a `fingerprint` of the list
    (the digest of the index it was read from) to tell later whether it changed."""

    descriptors: tuple[Descriptor, ...]
    fingerprint: str

    @property
    def digests(self) -> frozenset[str]:
        return frozenset(d.digest for d in self.descriptors)

    def of_types(self, artifact_types: Sequence[str]) -> Referrers:
        """Only the referrers of these artifact types (all of them when empty)."""
        if not artifact_types:
            return self
        kept = tuple(d for d in self.descriptors if d.artifact_type in artifact_types)
        return Referrers(kept, self.fingerprint)


NONE = Referrers((), "")


def parse_listing(raw: bytes, where: str) -> tuple[Descriptor, ...]:
    """The descriptors of a referrers list (an image index)."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"{where}: referrers list is not JSON ({exc})") from None
    entries = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ManifestError(f"{where}: referrers list is not an image index")
    return tuple(
        Descriptor.from_json(entry, f"{where} manifests[{i}]") for i, entry in enumerate(entries)
    )


def listing_index(descriptors: Iterable[Descriptor]) -> Manifest:
    """The referrers tag's image index listing `descriptors`, in the given order."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [d.to_json() for d in descriptors],
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return Manifest.parse(raw, OCI_INDEX)


def with_referrer(existing: Sequence[Descriptor], added: Descriptor) -> list[Descriptor] | None:
    """`existing` with `added` appended, or None when it is already listed (the spec:
    duplicate entries should not be created)."""
    if any(d.digest == added.digest for d in existing):
        return None
    return [*existing, added]

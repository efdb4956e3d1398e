"""Manifests as the bytes a registry served, with their digest and what they reference.

A `Manifest` is never re-serialised: the raw bytes are what gets pushed, so the digest
in the target equals the digest in the source. Parsing only reads the descriptors
needed to find children (for indexes) and blobs (for image manifests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mirror import digest as _digest
from mirror.errors import ManifestError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
# Every type we handle, indexes first: registries that convert on a narrower Accept
# (distribution serves linux/amd64 to a schema2-only client) must serve us the original.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

_NON_DISTRIBUTABLE = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/arm64`, `linux/arm/v7`."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"not a platform (os/arch[/variant]): {text!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to content: media type, digest and size (plus index metadata)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    artifact_type: str | None = field(default=None, compare=False)

    @property
    def is_manifest(self) -> bool:
        return self.media_type in MANIFEST_TYPES

    @property
    def is_attestation(self) -> bool:
        """An index entry that is not a runnable image (platform `unknown/unknown`)."""
        return self.platform is not None and self.platform.os == "unknown"

    @property
    def distributable(self) -> bool:
        """False for foreign (Windows base) layers that registries serve from elsewhere."""
        return not (self.media_type in _NON_DISTRIBUTABLE and self.urls)

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: descriptor is not an object")
        try:
            media_type = str(data["mediaType"])
            size = int(data["size"])
            digest = _digest.validate(str(data["digest"]))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ManifestError(f"{where}: malformed descriptor ({exc})") from None
        platform = None
        if isinstance(data.get("platform"), dict):
            p = data["platform"]
            variant = p.get("variant")
            platform = Platform(
                str(p.get("os", "")),
                str(p.get("architecture", "")),
                str(variant) if variant is not None else None,
            )
        urls, annotations = data.get("urls") or [], data.get("annotations") or {}
        if not isinstance(urls, list) or not isinstance(annotations, dict):
            raise ManifestError(f"{where}: malformed descriptor (urls or annotations)")
        artifact_type = data.get("artifactType")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            platform=platform,
            urls=tuple(str(url) for url in urls),
            annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
            artifact_type=str(artifact_type) if artifact_type else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in an index (platform and urls left out: this is
        for referrers lists, whose entries have neither)."""
        data: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


@dataclass(frozen=True, slots=True)
class Manifest:
    """The exact bytes of a manifest, its media type and its digest."""

    raw: bytes = field(repr=False)
    media_type: str
    digest: str

    @classmethod
    def parse(
        cls, raw: bytes, media_type: str | None = None, expected_digest: str | None = None
    ) -> Manifest:
        """Wrap `raw`, checking its digest against `expected_digest` when given.

        The media type comes from the document's own `mediaType` field when it has one
        (it must then agree with `media_type` if both are set), else from `media_type`
        (the Content-Type it was served with).
        """
        algorithm = _digest.algorithm_of(expected_digest) if expected_digest else "sha256"
        digest = _digest.compute(raw, algorithm)
        if expected_digest and digest != expected_digest:
            _digest.check(raw, expected_digest, "manifest")
        document = _load(raw, digest)
        declared = document.get("mediaType")
        resolved = declared if isinstance(declared, str) and declared else media_type
        if resolved is None and "manifests" in document:
            resolved = OCI_INDEX
        if resolved not in MANIFEST_TYPES:
            if document.get("schemaVersion") == 1:
                raise ManifestError(
                    f"{digest}: Docker schema 1 manifests are not supported (deprecated format)"
                )
            raise ManifestError(f"{digest}: unsupported manifest media type {resolved!r}")
        return cls(raw=raw, media_type=resolved, digest=digest)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def document(self) -> dict[str, Any]:
        return _load(self.raw, self.digest)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))

    def children(self) -> list[Descriptor]:
        """The manifests an index lists, images before attestations (which name them)."""
        if not self.is_index:
            return []
        entries = self.document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError(f"{self.digest}: index without a 'manifests' list")
        children = [
            Descriptor.from_json(entry, f"{self.digest} manifests[{i}]")
            for i, entry in enumerate(entries)
        ]
        return sorted(children, key=lambda child: child.is_attestation)

    def blobs(self) -> list[Descriptor]:
        """The config and layers an image manifest needs, skipping foreign layers."""
        if self.is_index:
            return []
        document = self.document
        if "config" not in document:
            raise ManifestError(f"{self.digest}: image manifest without a config")
        config = Descriptor.from_json(document["config"], f"{self.digest} config")
        listed = document.get("layers") or []
        if not isinstance(listed, list):
            raise ManifestError(f"{self.digest}: 'layers' is not a list")
        layers = [
            Descriptor.from_json(layer, f"{self.digest} layers[{i}]")
            for i, layer in enumerate(listed)
        ]
        return [config, *(layer for layer in layers if layer.distributable)]

    def subject(self) -> Descriptor | None:
        """The manifest this one refers to (attestations, signatures), if any."""
        subject = self.document.get("subject")
        if subject is None:
            return None
        return Descriptor.from_json(subject, f"{self.digest} subject")

    @property
    def artifact_type(self) -> str | None:
        """What kind of artifact this is: its `artifactType`, else (image manifests) its
        config's media type, as the distribution spec lists referrers."""
        document = self.document
        declared = document.get("artifactType")
        if isinstance(declared, str) and declared:
            return declared
        config = document.get("config")
        if not self.is_index and isinstance(config, dict):
            media_type = config.get("mediaType")
            return str(media_type) if media_type else None
        return None

    def referrer_descriptor(self) -> Descriptor:
        """How this manifest is listed among its subject's referrers: media type, digest,
        size, artifact type and every annotation of the manifest."""
        annotations = self.document.get("annotations")
        pairs = annotations.items() if isinstance(annotations, dict) else ()
        return Descriptor(
            self.media_type,
            self.digest,
            len(self.raw),
            annotations=tuple(sorted((str(k), str(v)) for k, v in pairs)),
            artifact_type=self.artifact_type,
        )


def _load(raw: bytes, digest: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = exc if isinstance(exc, ValueError) else "nested too deeply"
        raise ManifestError(f"{digest}: manifest is not valid JSON ({reason})") from None
    if not isinstance(document, dict):
        raise ManifestError(f"{digest}: manifest is not a JSON object")
    return document

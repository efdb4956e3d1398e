"""What the target registry holds: pins looked up in it, and rewritten images checked.

Both work through a `Store` handed in by the caller (a registry client opened on the
target's host, with no repository prefix, so that the full repository path of an
image string is the path asked for); nothing here opens a connection itself.

- `RegistryLookup` is a `VersionLookup` over the target: the index digest a tag has
  there, and the specific tag of the same line (`1.5` -> `1.5.3`) that has the same
  digest, tried newest first. Another lookup (a ledger) can take its place.
- `AvailabilityCheck` resolves a rewritten reference in the target, reads its index
  and tells which of the platforms the fleet needs are missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mirror.deployment.rewrite import Target
from mirror.errors import MirrorError, NotFound, Unreachable
from mirror.manifest import Descriptor, Platform
from mirror.reference import ImageReference
from mirror.versions import TagKind, Version, parse_tag

if TYPE_CHECKING:
    from mirror.transport.store import Store

_CONFIG_LIMIT = 4 * 1024 * 1024


@dataclass
class RegistryLookup:
    """`VersionLookup` answered by the target registry (what `mirror sync` put there).

    Answers are cached for the lifetime of the object, so that many manifests naming
    the same image cost one round of requests.
    """

    store: Store
    target: Target
    _resolved: dict[tuple[str, str], Descriptor | None] = field(default_factory=dict)
    _tags: dict[str, list[str]] = field(default_factory=dict)

    def index_digest(self, source: ImageReference) -> str | None:
        """The digest `source`'s tag (or digest) resolves to in the target."""
        found = self._resolve(self._repository(source), source.reference)
        return found.digest if found else None

    def specific_tag(self, source: ImageReference) -> str | None:
        """The newest specific tag in the target with the digest the rolling tag has there."""
        if source.tag is None:
            return None
        repository = self._repository(source)
        rolling = self._resolve(repository, source.tag)
        if rolling is None:
            return None
        for tag in specific_candidates(source.tag, self._list(repository)):
            found = self._resolve(repository, tag)
            if found is not None and found.digest == rolling.digest:
                return tag
        return None

    def _repository(self, source: ImageReference) -> str:
        return self.target.repository_for(source.repository)

    def _resolve(self, repository: str, reference: str) -> Descriptor | None:
        key = (repository, reference)
        if key not in self._resolved:
            self._resolved[key] = self.store.resolve(repository, reference)
        return self._resolved[key]

    def _list(self, repository: str) -> list[str]:
        if repository not in self._tags:
            try:
                self._tags[repository] = self.store.list_tags(repository)
            except NotFound:
                self._tags[repository] = []
        return self._tags[repository]


def specific_candidates(rolling: str, tags: Iterable[str]) -> list[str]:
    """The specific version tags that `rolling` may stand for, newest first.

    For a line tag (`1.5`, `1.5-linux-arm32v7`): the specific versions of that line
    with the same platform suffix. For any other tag (`latest`): every specific
    version tag. Releases sort before release candidates of the same version.
    """
    wanted = parse_tag(rolling)
    if wanted.kind is TagKind.SPECIFIC:
        return []
    found: list[tuple[Version, str]] = []
    for text in tags:
        tag = parse_tag(text)
        if tag.version is None or tag.debug:
            continue
        if wanted.kind is TagKind.ROLLING and (tag.line, tag.arch) != (wanted.line, wanted.arch):
            continue
        found.append((tag.version, text))
    return [text for _, text in sorted(found, reverse=True)]


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether one rewritten reference can be pulled from the target on every platform."""

    reference: ImageReference
    digest: str | None = None
    platforms: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.missing

    @property
    def message(self) -> str:
        """What is wrong, in a few words (empty when nothing is)."""
        if self.problem is not None:
            return self.problem
        if self.missing:
            has = ", ".join(self.platforms) or "none"
            return f"missing platform {', '.join(self.missing)} in the target (it has {has})"
        return ""


def normalise(platform: Platform) -> Platform:
    """The platform as containerd matches it: arm64 means arm64/v8, arm means arm/v7."""
    variant = platform.variant
    if platform.architecture == "arm64" and variant == "v8":
        variant = None
    if platform.architecture == "arm" and variant is None:
        variant = "v7"
    return Platform(platform.os, platform.architecture, variant)


@dataclass
class AvailabilityCheck:
    """Checks rewritten references against the target: present, and every platform there."""

    store: Store
    platforms: tuple[str, ...]
    _seen: dict[ImageReference, Availability] = field(default_factory=dict)

    def __call__(self, reference: ImageReference) -> Availability:
        """What the target holds for `reference`; a registry that cannot be reached at
        all raises `Unreachable` (the other references would fail the same way)."""
        if reference not in self._seen:
            try:
                self._seen[reference] = self._check(reference)
            except Unreachable:
                raise
            except MirrorError as exc:
                self._seen[reference] = Availability(reference, problem=f"cannot check: {exc}")
        return self._seen[reference]

    def _check(self, reference: ImageReference) -> Availability:
        repository = reference.repository
        found = self.store.resolve(repository, reference.reference)
        if found is None:
            return Availability(reference, problem="not in the target: mirror it first")
        manifest = self.store.get_manifest(repository, found.digest, expected_digest=found.digest)
        if manifest.is_index:
            present = {
                normalise(child.platform): child
                for child in manifest.children()
                if child.platform is not None and not child.is_attestation
            }
        else:
            platform = self._image_platform(repository, manifest.blobs()[0])
            present = {normalise(platform): found} if platform else {}
        names = tuple(str(p) for p in present)
        missing = []
        for wanted in self.platforms:
            child = present.get(normalise(Platform.parse(wanted)))
            if child is None:
                missing.append(wanted)
            elif (
                child.digest != found.digest
                and self.store.resolve(repository, child.digest) is None
            ):
                missing.append(f"{wanted} (listed, but its image {child.digest} is absent)")
        return Availability(reference, found.digest, names, tuple(missing))

    def _image_platform(self, repository: str, config: Descriptor) -> Platform | None:
        """The platform of a single image, from its config blob."""
        if config.size > _CONFIG_LIMIT:
            return None
        with self.store.read_blob(repository, config) as chunks:
            data = b"".join(chunks)
        try:
            document = json.loads(data)
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        os_name, architecture = document.get("os"), document.get("architecture")
        if not isinstance(os_name, str) or not isinstance(architecture, str):
            return None
        variant = document.get("variant")
        return Platform(os_name, architecture, variant if isinstance(variant, str) else None)

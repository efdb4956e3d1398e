"""Whether rewritten images can be pulled from the target, on every platform the fleet needs.

`AvailabilityCheck` resolves a rewritten reference in the target (through a `Store`
the caller opened), reads its index and tells which of the wanted platforms are
missing; a single-platform image's platform is read from its config blob.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mirror.errors import MirrorError, Unreachable
from mirror.manifest import Descriptor, Platform
from mirror.reference import ImageReference

if TYPE_CHECKING:
    from mirror.transport.store import Store


_CONFIG_LIMIT = 4 * 1024 * 1024


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

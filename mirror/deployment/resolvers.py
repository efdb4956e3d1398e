"""What a mirrored image becomes in the target: the mirror's name, and the pin.

`Target` is the mirror (a registry and an optional repository prefix). A `Resolver`
answers for one source image and pin mode (`--pin tag|specific|digest`):
`TagResolver` maps the name and keeps the tag, offline; `PinningResolver` asks a
`VersionLookup` (the ledger or the target registry, see `lookups`) for the specific
version or index digest a tag means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mirror.deployment.images import ImageString
from mirror.errors import ConfigError
from mirror.governance.versions import parse_tag
from mirror.reference import ImageReference, validate_repository

_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?$"
)


class PinMode(StrEnum):
    TAG = "tag"  # keep the tag as written
    SPECIFIC = "specific"  # a rolling tag becomes the specific version it means now
    DIGEST = "digest"  # name@sha256:<index digest>


@dataclass(frozen=True, slots=True)
class Target:
    """The mirror: a registry host and an optional repository path prefix."""

    registry: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> Target:
        """`myacr.azurecr.io` or `myacr.azurecr.io/some/prefix` (a scheme is dropped).

        The host must look like a registry (a dot, a port, or `localhost`): anything else
        would make the image strings name a Docker Hub namespace instead.
        """
        bare = re.sub(r"^[a-z]+://", "", text.strip()).strip("/")
        host, _, path = bare.partition("/")
        if not _HOST.match(host) or not ("." in host or ":" in host or host == "localhost"):
            raise ConfigError(f"not a registry host: {text!r} (expected e.g. myacr.azurecr.io)")
        prefix = path.strip("/")
        if prefix:
            validate_repository(prefix)
        return cls(host.lower(), prefix)

    def __str__(self) -> str:
        return f"{self.registry}/{self.prefix}" if self.prefix else self.registry

    def repository_for(self, source_repository: str) -> str:
        return f"{self.prefix}/{source_repository}" if self.prefix else source_repository

    @property
    def credential_name(self) -> str:
        """Default name of the registryCredentials entry: the registry's name
        (`myacr` for myacr.azurecr.io; `10-0-0-5` for an address such as 10.0.0.5:5000)."""
        host = self.registry.split(":")[0]
        if host.replace(".", "").isdigit():
            return host.replace(".", "-")
        return host.split(".")[0]

    def holds(self, image: ImageString) -> bool:
        return image.registry is not None and image.registry.lower() == self.registry


def format_image(registry: str, repository: str, tag: str | None, digest: str | None) -> str:
    """An image string edgeAgent accepts: `name@digest` if pinned, else `name:tag`."""
    name = f"{registry}/{repository}"
    if digest:
        return f"{name}@{digest}"
    return f"{name}:{tag}" if tag else name


@dataclass(frozen=True, slots=True)
class Resolved:
    image: str


@dataclass(frozen=True, slots=True)
class Unresolved:
    reason: str


Resolution = Resolved | Unresolved


class Resolver(Protocol):
    """Decides what a mirrored source image becomes in the target."""

    def __call__(self, source: ImageString, pin: PinMode) -> Resolution: ...


class VersionLookup(Protocol):
    """What a tag of a source repository means now (from the ledger or the registry)."""

    def specific_tag(self, source: ImageReference) -> str | None: ...

    def index_digest(self, source: ImageReference) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TagResolver:
    """`--pin tag`, offline: the same tag (or digest) under the target's name.

    For `specific` and `digest` it answers only what needs no lookup: a tag that is
    already specific, or a digest already written.
    """

    target: Target

    def __call__(self, source: ImageString, pin: PinMode) -> Resolution:
        if source.repository is None:
            return Unresolved("the repository name is a placeholder")
        repository = self.target.repository_for(source.repository)
        if source.digest:
            return Resolved(format_image(self.target.registry, repository, None, source.digest))
        if pin is PinMode.TAG:
            return Resolved(format_image(self.target.registry, repository, source.tag, None))
        if source.literal_tag is None:
            return Unresolved(f"--pin {pin} needs a literal tag; this one is a placeholder")
        if pin is PinMode.SPECIFIC and parse_tag(source.literal_tag).names_release:
            return Resolved(format_image(self.target.registry, repository, source.tag, None))
        what = "specific version" if pin is PinMode.SPECIFIC else "index digest"
        return Unresolved(
            f"the {what} of {source.text} needs the ledger or the registry (not offline)"
        )


@dataclass(frozen=True, slots=True)
class PinningResolver:
    """`--pin specific|digest` through a `VersionLookup`; `--pin tag` as `TagResolver`.

    `origin` names where the lookup looks (e.g. the target registry) in the reason
    given when it has no answer.
    """

    target: Target
    lookup: VersionLookup
    origin: str = ""

    def __call__(self, source: ImageString, pin: PinMode) -> Resolution:
        offline = TagResolver(self.target)(source, pin)
        if isinstance(offline, Resolved) or source.reference is None:
            return offline
        assert source.repository is not None
        repository = self.target.repository_for(source.repository)
        if pin is PinMode.SPECIFIC:
            tag = self.lookup.specific_tag(source.reference)
            if tag is None:
                return Unresolved(f"no specific version is known for {source.text}{self._in}")
            return Resolved(format_image(self.target.registry, repository, tag, None))
        digest = self.lookup.index_digest(source.reference)
        if digest is None:
            return Unresolved(f"no index digest is known for {source.text}{self._in}")
        return Resolved(format_image(self.target.registry, repository, None, digest))

    @property
    def _in(self) -> str:
        return f" in {self.origin}" if self.origin else ""

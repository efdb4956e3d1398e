"""Image references (`registry/repository:tag@digest`) as immutable values.

Parsing follows the distribution reference grammar, including Docker Hub's
normalisation (`alpine` -> `docker.io/library/alpine`), through docker-image-py;
normalisation happens once, here, and every other module works with the parsed value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mirror import digest as _digest
from mirror.errors import InvalidReference

DOCKER_HUB = "docker.io"
# ASCII only, and matched whole (`fullmatch`): `$` would let a trailing newline through.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REPOSITORY_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


def validate_tag(tag: str) -> str:
    """Return `tag` if it is a valid tag name (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`)."""
    if not _TAG.fullmatch(tag):
        raise InvalidReference(f"not a valid tag: {tag!r}")
    return tag


def validate_repository(repository: str) -> str:
    """Return `repository` if it is a valid repository path (`a/b-c/d_e`)."""
    components = repository.split("/")
    if not repository or len(repository) > 255:
        raise InvalidReference(f"not a valid repository name: {repository!r}")
    for component in components:
        if not _REPOSITORY_COMPONENT.fullmatch(component):
            raise InvalidReference(f"not a valid repository name: {repository!r}")
    return repository


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed, normalised image reference. At least one of tag or digest may be unset."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse `text` the way `docker pull` would.

        `$upstream:443/...` (the nested-edge parent registry) is not an image reference
        in this sense and is refused, as is anything else outside the grammar.
        """
        if text.startswith("$"):
            raise InvalidReference(f"not an image reference (placeholder): {text!r}")
        if not text.isascii() or not text.isprintable() or " " in text:
            raise InvalidReference(
                f"not a valid image reference {text!r}: spaces or control characters"
            )
        from docker_image import reference as _grammar  # compiles large regexes: on demand

        try:
            parsed = _grammar.Reference.parse_normalized_named(text)
        except Exception as exc:  # the grammar's own errors, whatever their class
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise InvalidReference(f"not a valid image reference {text!r}: {reason}") from None
        digest = parsed["digest"] or None
        return cls(
            registry=parsed.domain(),
            repository=parsed.path(),
            tag=parsed["tag"] or None,
            digest=_digest.validate(digest) if digest is not None else None,
        )

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What names the manifest in the registry API: the digest if set, else the tag."""
        if self.digest:
            return self.digest
        return self.tag or "latest"

    def with_tag(self, tag: str) -> ImageReference:
        return replace(self, tag=validate_tag(tag), digest=None)

    def with_digest(self, digest: str) -> ImageReference:
        return replace(self, tag=None, digest=_digest.validate(digest))

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

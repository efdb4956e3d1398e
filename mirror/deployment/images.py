"""What an image string in a deployment manifest is, before anyone pulls it.

An image string is one of: a reference edgeAgent can pull (checked against edgeAgent's
own grammar `^(?<repo>([^/]*/)*)(?<image>[^/:]+)(?<tag>:[^/:]+)?$` and then parsed as an
`ImageReference`); a string holding template placeholders (`${MODULES.X}`,
`${MODULEDIR<./m>.debug}`, `$VAR`, `${VAR}`, `<Token>`, `__TOKEN__`, `#{Token}#`),
wholly or in part; a nested-edge `$upstream:<port>/...` reference to the parent
device's registry; or something edgeAgent would refuse, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mirror.errors import InvalidReference
from mirror.reference import DOCKER_HUB, ImageReference

_GRAMMAR = re.compile(r"^(?P<repo>(?:[^/]*/)*)(?P<image>[^/:]+)(?P<tag>:[^/:]+)?$")
_PLACEHOLDER = re.compile(
    r"(?P<module>\$\{MODULES?\.[^}]*\})"
    r"|(?P<moduledir>\$\{MODULEDIR<[^>]*>[^}]*\})"
    r"|(?P<variable>\$\{[^}]*\}|\$(?!upstream(?![A-Za-z0-9_]))[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<pipeline><[^<>]+>|#\{[^}]*\}#|(?<![A-Za-z0-9])__[A-Z][A-Z0-9_]*__(?![A-Za-z0-9]))"
)
_UPSTREAM = re.compile(r"^\$upstream(?::(?P<port>[0-9]+))?(?P<slash>/)?(?P<rest>.*)$")
_TAG_AND_DIGEST = re.compile(r":[^/:@]+@[a-z0-9]+:")
_PLATFORMS = ("arm32v7", "arm64v8", "amd64", "windows")


class ImageKind(StrEnum):
    REFERENCE = "reference"
    PLACEHOLDER = "placeholder"
    UPSTREAM = "upstream"
    INVALID = "invalid"


class PlaceholderKind(StrEnum):
    MODULE = "module"  # ${MODULES.Name}, ${MODULES.Name.arm32v7}, ${MODULES.Name.debug}
    MODULE_DIR = "module-dir"  # ${MODULEDIR<./path>}, ${MODULEDIR<./path>.debug}
    VARIABLE = "variable"  # $VAR, ${VAR}
    PIPELINE = "pipeline"  # <Token>, __TOKEN__, #{Token}#


@dataclass(frozen=True, slots=True)
class Placeholder:
    text: str
    kind: PlaceholderKind
    start: int
    end: int

    @property
    def is_debug(self) -> bool:
        return self.kind in (PlaceholderKind.MODULE, PlaceholderKind.MODULE_DIR) and (
            self.text.endswith(".debug}")
        )

    @property
    def platform(self) -> str | None:
        """The platform an iotedgedev module placeholder selects (`${MODULES.X.arm32v7}`)."""
        if self.kind not in (PlaceholderKind.MODULE, PlaceholderKind.MODULE_DIR):
            return None
        return next((p for p in _PLATFORMS if f".{p}" in self.text), None)


def find_placeholders(text: str) -> tuple[Placeholder, ...]:
    """Every template placeholder or pipeline token in `text`, left to right."""
    found = []
    for match in _PLACEHOLDER.finditer(text):
        kind = PlaceholderKind(str(match.lastgroup).replace("moduledir", "module-dir"))
        found.append(Placeholder(match.group(), kind, match.start(), match.end()))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class ImageString:
    """An image string as written, classified.

    `registry` and `repository` are set (normalised) when the name part is literal;
    `tag` is the text after the last `:` of the name (it may hold placeholders);
    `reference` is set only for a wholly literal, valid reference.
    """

    text: str
    kind: ImageKind
    placeholders: tuple[Placeholder, ...] = ()
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    reference: ImageReference | None = None
    problem: str | None = None

    @property
    def name(self) -> str | None:
        """`registry/repository` when the name part is literal."""
        if self.registry is None or self.repository is None:
            return None
        return f"{self.registry}/{self.repository}"

    @property
    def is_debug(self) -> bool:
        tag_is_debug = self.tag is not None and ".debug" in self.tag
        return tag_is_debug or any(p.is_debug for p in self.placeholders)

    @property
    def platform(self) -> str | None:
        """The platform named by a per-arch tag or module placeholder (`arm32v7`...)."""
        for placeholder in self.placeholders:
            if placeholder.platform:
                return placeholder.platform
        tag = self.tag or ""
        return next((p for p in _PLATFORMS if p in tag), None)

    @property
    def literal_tag(self) -> str | None:
        """The tag, if it holds no placeholder."""
        if self.tag is None or find_placeholders(self.tag):
            return None
        return self.tag

    @property
    def registry_text(self) -> str | None:
        """The registry as written (placeholders kept), to compare with credential addresses."""
        if self.registry is not None or self.kind is ImageKind.INVALID:
            return self.registry
        slash = _mask(self.text, self.placeholders).find("/")
        if slash <= 0:
            return None
        head = self.text[:slash]
        if find_placeholders(head) or _looks_like_host(head):
            return head
        return DOCKER_HUB


def classify(text: str) -> ImageString:
    """Classify the image string `text` (never raises)."""
    if text.startswith("$upstream"):
        return _classify_upstream(text)
    placeholders = find_placeholders(text)
    if placeholders:
        return _classify_with_placeholders(text, placeholders)
    return _classify_literal(text)


def _classify_upstream(text: str) -> ImageString:
    match = _UPSTREAM.match(text)
    assert match is not None
    if not match["port"] or not match["slash"]:
        problem = "`$upstream` must be written `$upstream:<port>/<repository>:<tag>`"
        return ImageString(text, ImageKind.INVALID, problem=problem)
    rest = match["rest"]
    placeholders = find_placeholders(rest)
    split = _split(_mask(rest, placeholders))
    if split is None:
        problem = "does not match edgeAgent's image grammar after `$upstream:<port>/`"
        return ImageString(text, ImageKind.INVALID, problem=problem)
    name_end, separator = split
    offset = len(text) - len(rest)
    shifted = tuple(
        Placeholder(p.text, p.kind, p.start + offset, p.end + offset) for p in placeholders
    )
    return ImageString(
        text,
        ImageKind.UPSTREAM,
        placeholders=shifted,
        registry=f"$upstream:{match['port']}",
        repository=rest[:name_end],
        tag=rest[name_end + 1 :] if separator == ":" else None,
        digest=rest[name_end + 1 :] if separator == "@" else None,
    )


def _classify_with_placeholders(text: str, placeholders: tuple[Placeholder, ...]) -> ImageString:
    split = _split(_mask(text, placeholders))
    if split is None:
        return ImageString(text, ImageKind.PLACEHOLDER, placeholders)
    name_end, separator = split
    tag = text[name_end + 1 :] if separator == ":" else None
    digest = text[name_end + 1 :] if separator == "@" else None
    if any(p.start < name_end for p in placeholders):
        return ImageString(text, ImageKind.PLACEHOLDER, placeholders, tag=tag, digest=digest)
    try:
        name = ImageReference.parse(text[:name_end])
    except InvalidReference:
        return ImageString(text, ImageKind.PLACEHOLDER, placeholders, tag=tag, digest=digest)
    return ImageString(
        text,
        ImageKind.PLACEHOLDER,
        placeholders,
        registry=name.registry,
        repository=name.repository,
        tag=tag,
        digest=digest,
    )


def _classify_literal(text: str) -> ImageString:
    if not text.strip():
        return ImageString(text, ImageKind.INVALID, problem="the image is empty")
    if _TAG_AND_DIGEST.search(text):
        problem = (
            "edgeAgent refuses `name:tag@sha256:...`: pin by digest as `name@sha256:...`"
            " (or keep the tag and set settings.digest)"
        )
        return ImageString(text, ImageKind.INVALID, problem=problem)
    if _split(text) is None:
        return ImageString(text, ImageKind.INVALID, problem="does not match edgeAgent's grammar")
    try:
        reference = ImageReference.parse(text)
    except InvalidReference as exc:
        return ImageString(text, ImageKind.INVALID, problem=str(exc))
    return ImageString(
        text,
        ImageKind.REFERENCE,
        registry=reference.registry,
        repository=reference.repository,
        tag=reference.tag,
        digest=reference.digest,
        reference=reference,
    )


def _mask(text: str, placeholders: tuple[Placeholder, ...]) -> str:
    """`text` with each placeholder replaced by as many `x` (so `/` and `:` in it vanish)."""
    chars = list(text)
    for placeholder in placeholders:
        chars[placeholder.start : placeholder.end] = "x" * (placeholder.end - placeholder.start)
    return "".join(chars)


def _split(text: str) -> tuple[int, str | None] | None:
    """Where the name ends and what follows it (`:` tag, `@` digest, or nothing).

    None when edgeAgent's grammar refuses the text.
    """
    match = _GRAMMAR.match(text)
    if not match:
        return None
    if "@" in match["image"]:
        return text.index("@", match.start("image")), "@"  # the grammar reads the hex as a tag
    return match.end("image"), ":" if match["tag"] else None


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"

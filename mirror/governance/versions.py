"""The IoT Edge runtime tag grammar: tags, versions, lines and version ranges as values.

IoT Edge publishes each runtime image under:
- specific tags `X.Y.Z` (and `X.Y.Z.W` in the 1.0 era), meant never to change;
- rolling tags `X.Y`, which move to the newest `X.Y.z`;
- release candidates `X.Y.Z-rcN` or `X.Y.Z-rc.N`;
- per-architecture variants of all of these (`1.5.3-linux-amd64`);
and, for other images, `latest` and `.debug` builds. Anything else is unrecognised.

Parsing happens once, in `parse_tag`; every other module works with the parsed `Tag`.
Versions sort the way IoT Edge releases do: by their numbers (a four-part version after
its three-part prefix), a release candidate before its release.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ARCHITECTURES = tuple(
    f"{system}-{arch}"
    for system in ("linux", "windows")
    for arch in ("amd64", "arm32v7", "arm64v8")
)

_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRERELEASE = rf"-rc(?P<dot>\.)?(?P<rc>{_NUMBER})"
_TAG = re.compile(
    rf"(?P<numbers>{_NUMBER}(?:\.{_NUMBER}){{1,3}})"
    rf"(?:{_PRERELEASE})?"
    rf"(?:-(?P<arch>{'|'.join(ARCHITECTURES)}))?"
    r"(?P<debug>\.debug)?"
)
_VERSION = re.compile(rf"(?P<numbers>{_NUMBER}(?:\.{_NUMBER}){{2,3}})(?:{_PRERELEASE})?")
_LINE = re.compile(rf"(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})")
_CLAUSE = re.compile(
    rf"(?P<op>>=|<=|==|!=|>|<)?\s*"
    rf"(?P<numbers>{_NUMBER}(?:\.{_NUMBER}){{0,3}})"
    rf"(?:{_PRERELEASE})?"
    r"(?P<wildcard>\.\*)?"
)
# Outside the IoT Edge grammar: a tag that starts with three version numbers.
_VERSIONED = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+")
_RELEASE = 1
_CANDIDATE = 0


class TagKind(StrEnum):
    """What a tag promises: `specific` never moves, `rolling` moves forward, `other` is neither."""

    SPECIFIC = "specific"
    ROLLING = "rolling"
    OTHER = "other"


@dataclass(frozen=True, slots=True, order=True)
class Line:
    """A release line `X.Y` (1.5, 1.6): what a rolling tag follows."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Line:
        """Parse `X.Y`; raise `ValueError` otherwise."""
        match = _LINE.fullmatch(text.strip())
        if not match:
            raise ValueError(f"not a release line (X.Y): {text!r}")
        return cls(int(match["major"]), int(match["minor"]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A specific version: 3 or 4 numbers, optionally a release candidate.

    Ordering and equality ignore how the candidate is spelled: `1.6.0-rc1 == 1.6.0-rc.1`.
    """

    numbers: tuple[int, ...]
    stage: int = _RELEASE
    candidate: int = 0
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse `X.Y.Z`, `X.Y.Z.W`, with an optional `-rcN` / `-rc.N`; raise `ValueError`."""
        match = _VERSION.fullmatch(text)
        if not match:
            raise ValueError(f"not an IoT Edge version: {text!r}")
        return _version_from(match, text)

    @property
    def line(self) -> Line:
        return Line(self.numbers[0], self.numbers[1])

    @property
    def prerelease(self) -> int | None:
        """The release-candidate number, or None for a release."""
        return self.candidate if self.stage == _CANDIDATE else None

    def __str__(self) -> str:
        return self.text


def _version_from(match: re.Match[str], text: str) -> Version:
    numbers = tuple(int(part) for part in match["numbers"].split("."))
    if match["rc"] is None:
        return Version(numbers, _RELEASE, 0, text)
    return Version(numbers, _CANDIDATE, int(match["rc"]), text)


@dataclass(frozen=True, slots=True)
class Tag:
    """A tag as IoT Edge publishes it, parsed once.

    `version` is set for specific tags, `line` for specific and rolling tags; `latest`
    and unrecognised tags are of kind `other` and carry neither.
    """

    text: str
    kind: TagKind
    version: Version | None = None
    line: Line | None = None
    arch: str | None = None
    debug: bool = False

    @property
    def is_latest(self) -> bool:
        return self.text == "latest"

    @property
    def recognised(self) -> bool:
        return self.kind is not TagKind.OTHER or self.is_latest

    @property
    def prerelease(self) -> bool:
        return self.version is not None and self.version.prerelease is not None

    @property
    def per_arch(self) -> bool:
        return self.arch is not None

    @property
    def release(self) -> str | None:
        """What the tag names, without its architecture or debug suffix: the version
        (`1.5.3` for `1.5.3-linux-amd64.debug`), the line of a rolling tag (`1.5`)."""
        if self.version is not None:
            return self.version.text
        return None if self.line is None else str(self.line)

    @property
    def names_release(self) -> bool:
        """Whether the tag stands for one release and does not move: a specific tag or,
        for images outside the IoT Edge grammar, a tag that starts with three version
        numbers (`v1.2.3`, `1.2.3-alpine`)."""
        if self.kind is not TagKind.OTHER:
            return self.kind is TagKind.SPECIFIC
        return _VERSIONED.match(self.text) is not None

    @property
    def sort_key(self) -> tuple[object, ...]:
        """Versioned tags in version order (a rolling tag after its line), then the rest."""
        if self.line is None:
            return (1, self.text)
        rest: tuple[object, ...] = (1,) if self.version is None else (0, self.version)
        return (0, self.line, *rest, self.arch or "", self.debug, self.text)

    def __str__(self) -> str:
        return self.text


def parse_tag(text: str) -> Tag:
    """Classify `text` in the IoT Edge tag grammar; never raises."""
    match = _TAG.fullmatch(text)
    if not match:
        return Tag(text, TagKind.OTHER)
    numbers = match["numbers"].split(".")
    arch, debug = match["arch"], match["debug"] is not None
    line = Line(int(numbers[0]), int(numbers[1]))
    if len(numbers) == 2:
        if match["rc"] is not None:
            return Tag(text, TagKind.OTHER)
        return Tag(text, TagKind.ROLLING, None, line, arch, debug)
    end = match.end("rc") if match["rc"] is not None else match.end("numbers")
    version = _version_from(match, text[:end])
    return Tag(text, TagKind.SPECIFIC, version, line, arch, debug)


def sort_tags(tags: Iterable[Tag]) -> list[Tag]:
    """`tags` in IoT Edge order: by line, specific versions ascending, rolling last."""
    return sorted(tags, key=lambda tag: tag.sort_key)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Clause:
    """One comparison of a range: `>=1.5`, `<1.5.3`, `1.5.*`, `!=1.0.9.4`.

    A bound of one or two numbers without a candidate (`1`, `1.5`) or with `.*` compares
    the version's leading numbers only, so it stands for a whole major or line:
    `<1.7` excludes `1.7.0-rc1`, `<=1.6` includes `1.6.9`. A bound of three or four numbers
    compares the full version (`>=1.5.3` excludes `1.5.3-rc1`).
    """

    op: str
    numbers: tuple[int, ...]
    prefix: bool
    bound: Version

    def matches(self, version: Version) -> bool:
        compare = _COMPARE[self.op]
        if self.prefix:
            return compare(version.numbers[: len(self.numbers)], self.numbers)
        return compare(version, self.bound)

    def admits_line(self, line: Line) -> bool:
        """Whether some version of `line` can satisfy this clause."""
        compare = _COMPARE[self.op]
        if self.prefix and len(self.numbers) <= 2:
            return compare((line.major, line.minor)[: len(self.numbers)], self.numbers)
        return _line_overlaps(self.op, line, self.bound.line)


def _line_overlaps(op: str, line: Line, bound: Line) -> bool:
    if op in (">=", ">"):
        return line >= bound
    if op in ("<=", "<"):
        return line <= bound
    if op == "==":
        return line == bound
    return True


@dataclass(frozen=True, slots=True)
class VersionRange:
    """Comma-separated clauses that must all hold: `>=1.5,<1.7`, `1.5.*`, `*`."""

    text: str
    clauses: tuple[Clause, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Parse a range; raise `ValueError` naming the clause that is not valid."""
        parts = [part.strip() for part in text.split(",")]
        if parts == ["*"]:
            return cls(text, ())
        return cls(text, tuple(_parse_clause(part) for part in parts))

    def __contains__(self, version: object) -> bool:
        if not isinstance(version, Version):
            return False
        return all(clause.matches(version) for clause in self.clauses)

    def admits_line(self, line: Line) -> bool:
        """Whether every clause can hold for some version of `line` (for rolling tags)."""
        return all(clause.admits_line(line) for clause in self.clauses)

    def admits(self, tag: Tag) -> bool:
        """A specific tag by its version, a rolling tag by its line; `other` never."""
        if tag.version is not None:
            return tag.version in self
        if tag.line is not None:
            return self.admits_line(tag.line)
        return False

    def __str__(self) -> str:
        return self.text


def _parse_clause(text: str) -> Clause:
    match = _CLAUSE.fullmatch(text)
    if not match:
        raise ValueError(f"not a version range clause: {text!r}")
    numbers = tuple(int(part) for part in match["numbers"].split("."))
    wildcard, candidate = match["wildcard"] is not None, match["rc"] is not None
    op = match["op"] or "=="
    if wildcard and (candidate or op not in ("==", "!=")):
        raise ValueError(f"a wildcard goes with == or != and no candidate: {text!r}")
    if candidate and len(numbers) < 3:
        raise ValueError(f"a release candidate needs X.Y.Z: {text!r}")
    if len(numbers) == 4 and wildcard:
        raise ValueError(f"nothing follows a four-part version: {text!r}")
    prefix = wildcard or (len(numbers) <= 2 and not candidate)
    if prefix:
        return Clause(op, numbers, prefix, Version((*numbers, 0, 0)[:3]))
    return Clause(op, numbers, prefix, _version_from(match, text[match.start("numbers") :]))

"""Which tags a run looks at: all of them, or only those a change touched.

A scheduled sync looks at every tag the policy selects. A release trigger (the release
feed, a webhook, a rolling tag that moved upstream) looks only at what the release
touched, so its cost follows the change, not the size of the mirror:

- `versions`: the tags of those releases (any architecture variant) and the rolling
  tags of their lines (`1.5.45` touches `1.5.45`, `1.5.45-linux-amd64` and `1.5`);
- `lines`: every tag of those lines;
- `tags`: those tags by name (a rolling tag that moved upstream).

A rolling tag is only ever decided knowing the specific tags it may move to, so a scope
that holds a rolling tag also holds the selected specific tags of its line from the
oldest release it names (or, naming none, the newest upstream has) onwards: the rolling
tag never moves backwards for want of seeing a newer release. The policy still selects:
a scope only narrows what the policy selected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from mirror.governance.versions import Line, Tag, TagKind, Version, parse_tag

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scope:
    """What a run looks at; `EVERYTHING` (no field set) is every selected tag of every
    configured repository. `repositories` narrows the repositories, the other fields the
    tags (a tag is in scope when any of them names it)."""

    repositories: frozenset[str] | None = None
    versions: frozenset[Version] | None = None
    lines: frozenset[Line] | None = None
    tags: frozenset[str] | None = None

    @property
    def every_tag(self) -> bool:
        return self.versions is None and self.lines is None and self.tags is None

    def __or__(self, other: Scope) -> Scope:
        """What two triggers together look at (runs that queue up are merged into one).
        The tag criteria apply to the union of the repositories."""
        if self.every_tag or other.every_tag:
            return Scope(_union(self.repositories, other.repositories))
        return Scope(
            _union(self.repositories, other.repositories),
            _join(self.versions, other.versions),
            _join(self.lines, other.lines),
            _join(self.tags, other.tags),
        )

    def repositories_of(self, configured: Iterable[str]) -> list[str]:
        """The configured repositories this scope covers, in configured order."""
        return [r for r in configured if self.repositories is None or r in self.repositories]

    def covers(self, tag: Tag) -> bool:
        """Whether `tag` is named by the scope (before the rolling tags' expansion)."""
        if self.every_tag:
            return True
        if self.tags is not None and tag.text in self.tags:
            return True
        if tag.line is None:
            return False
        if self.lines is not None and tag.line in self.lines:
            return True
        if self.versions is None:
            return False
        if tag.version is not None:
            return tag.version in self.versions
        return any(tag.line == version.line for version in self.versions)

    def narrow(self, selected: Iterable[str]) -> list[str]:
        """Of the tags the policy `selected` (one repository's), those this run looks at."""
        chosen = list(selected)
        if self.every_tag:
            return chosen
        parsed = [parse_tag(text) for text in chosen]
        named = [tag for tag in parsed if self.covers(tag)]
        wanted = {tag.text for tag in named}
        for rolling in (tag for tag in named if tag.kind is TagKind.ROLLING):
            wanted |= _releases_to_know(rolling, named, parsed)
        return [text for text in chosen if text in wanted]

    def to_json(self) -> dict[str, list[str] | None]:
        """A JSON object (as queued in the ledger); `from_json` reads it back."""
        return {
            "repositories": _texts(self.repositories),
            "versions": _texts(self.versions),
            "lines": _texts(self.lines),
            "tags": _texts(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict[str, list[str] | None]) -> Scope:
        versions, lines = data.get("versions"), data.get("lines")
        repositories, tags = data.get("repositories"), data.get("tags")
        return cls(
            frozenset(repositories) if repositories is not None else None,
            frozenset(Version.parse(v) for v in versions) if versions is not None else None,
            frozenset(Line.parse(line) for line in lines) if lines is not None else None,
            frozenset(tags) if tags is not None else None,
        )

    def __str__(self) -> str:
        """`every tag`, or what the scope names: `1.5.45, line 1.6 of azureiotedge-hub`."""
        named = [str(v) for v in sorted(self.versions or ())]
        named += [f"line {line}" for line in sorted(self.lines or ())]
        named += sorted(self.tags or ())
        what = ", ".join(named) or "every tag"
        if self.repositories is None:
            return what
        return f"{what} of {', '.join(sorted(self.repositories))}"


EVERYTHING = Scope()


def _texts(
    values: frozenset[str] | frozenset[Version] | frozenset[Line] | None,
) -> list[str] | None:
    return None if values is None else sorted(str(value) for value in values)


def _releases_to_know(rolling: Tag, named: list[Tag], selected: list[Tag]) -> set[str]:
    """The selected specific tags of `rolling`'s line and variant, from the oldest one the
    scope names (else the newest selected) onwards."""
    family = [tag for tag in selected if _same_family(rolling, tag)]
    if not family:
        return set()
    floor = min(
        (tag.version for tag in named if tag.version is not None and _same_family(rolling, tag)),
        default=max(tag.version for tag in family if tag.version is not None),
    )
    return {tag.text for tag in family if tag.version is not None and tag.version >= floor}


def _same_family(rolling: Tag, tag: Tag) -> bool:
    return (
        tag.kind is TagKind.SPECIFIC
        and tag.line == rolling.line
        and tag.arch == rolling.arch
        and tag.debug == rolling.debug
    )


def _union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    return None if a is None or b is None else a | b


def _join(a: frozenset[T] | None, b: frozenset[T] | None) -> frozenset[T] | None:
    if a is None:
        return b
    return a if b is None else a | b

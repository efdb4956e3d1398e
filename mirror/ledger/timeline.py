"""What a tag pointed at over time, as the ledger's records tell it.

A `Period` is a stretch of time during which a tag held one digest on one side
(upstream or in the mirror), merged from consecutive records; a record of absence ends
it. For a rolling tag, `SpecificResolver` names the specific tag of its line that had
the same content (`1.5` = `1.5.3`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from mirror.governance.versions import Tag, TagKind, parse_tag

Side = Literal["source", "target"]
Event = tuple[str, str | None, bool]  # (time, digest or None, written by mirror)
Timelines = dict[tuple[str, Side], list[Event]]


@dataclass(frozen=True, slots=True)
class Period:
    """A stretch of time during which a tag pointed at one digest, on one side.

    `first_seen`/`last_seen` are the first and last records of it; `mirrored` is when
    mirror wrote it under the tag (target side; None when found there already);
    `specific` names, for a rolling tag, the specific tag of its line with that content.
    """

    repository: str
    tag: str
    side: Side
    digest: str
    first_seen: datetime
    last_seen: datetime
    mirrored: datetime | None = None
    specific: str | None = None


@dataclass(frozen=True, slots=True)
class PointedAt:
    """What a tag pointed to at `when`, by the latest records at or before it.

    A digest of None means the tag was recorded absent on that side (or, when its
    `seen` is None too, never recorded). `mirrored` is when mirror wrote the target's
    content under the tag; `specific` is the specific tag of the line holding the
    target's content (else the source's).
    """

    repository: str
    tag: str
    when: datetime
    target_digest: str | None
    target_seen: datetime | None
    source_digest: str | None
    source_seen: datetime | None
    mirrored: datetime | None = None
    specific: str | None = None


def stamp(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC text; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def maybe_moment(text: str | None) -> datetime | None:
    return None if text is None else moment(text)


def timeline_order(item: tuple[tuple[str, Side], object]) -> tuple[object, ...]:
    """Tags in version order, each tag's source side before its target side."""
    (name, side), _ = item
    return (parse_tag(name).sort_key, side)


def periods(repository: str, tag: str, side: Side, timeline: Iterable[Event]) -> Iterator[Period]:
    """Consecutive records of one digest, merged; a record of absence ends a period."""
    digest: str | None = None
    first = last = ""
    mirrored: str | None = None
    for when, held, written in timeline:
        if digest is not None and held == digest:
            last = when
            mirrored = mirrored or (when if written else None)
            continue
        if digest is not None:
            yield Period(
                repository, tag, side, digest, moment(first), moment(last), maybe_moment(mirrored)
            )
        digest, first, last = held, when, when
        mirrored = when if written else None
    if digest is not None:
        yield Period(
            repository, tag, side, digest, moment(first), moment(last), maybe_moment(mirrored)
        )


class SpecificResolver:
    """Which specific tag of a rolling tag's line holds a digest, by the ledger's records
    (`holding` answers "which tags were recorded with this digest"; cached per digest:
    a history asks once per digest, not once per period)."""

    def __init__(self, holding: Callable[[str], set[str]]) -> None:
        self._holding = holding
        self._by_digest: dict[str, set[str]] = {}

    def specific(self, tag: str, digest: str | None) -> str | None:
        rolling = parse_tag(tag)
        if rolling.kind is not TagKind.ROLLING or digest is None:
            return None
        if digest not in self._by_digest:
            self._by_digest[digest] = self._holding(digest)
        candidates = [parse_tag(name) for name in self._by_digest[digest]]
        matching = [c for c in candidates if _same_family(rolling, c)]
        newest = max(matching, key=lambda c: c.sort_key, default=None)
        return None if newest is None else newest.text

    def named(self, period: Period) -> Period:
        """`period` with the specific tag its rolling tag stood for, when known."""
        specific = self.specific(period.tag, period.digest)
        return period if specific is None else replace(period, specific=specific)


def _same_family(rolling: Tag, candidate: Tag) -> bool:
    return (
        candidate.kind is TagKind.SPECIFIC
        and candidate.line == rolling.line
        and candidate.arch == rolling.arch
        and candidate.debug == rolling.debug
    )

"""How a mirrored tag may change: the decisions of tag governance, free of I/O.

- a specific tag (`1.5.3`) is created once and never overwritten; when upstream moves
  it (a rebuild) the decision is `hold` and the change is drift, optionally mirrored
  under a derived tag (`1.5.3-rebuild-20261126`);
- a rolling tag (`1.5`) moves only forward, to the newest specific version of its line;
- `Verdict` is a policy's answer for one upstream tag (selected or not, and why).

The policy file that selects tags is `policy.py`; this module needs no policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from mirror.governance.versions import Tag, TagKind, Version, parse_tag
from mirror.reference import validate_tag

REBUILD_MARK = "-rebuild-"
_REBUILD_TAG = re.compile(r"(?P<tag>.+)-rebuild-(?P<day>[0-9]{8})(?:-(?P<n>[2-9]|[1-9][0-9]+))?")


class OnRebuild(StrEnum):
    """What to do when upstream moves a specific tag that is already mirrored."""

    HOLD = "hold"
    MIRROR_AS_DERIVED_TAG = "mirror-as-derived-tag"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    SKIP = "skip"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the sync does with one selected tag.

    `drift` marks a specific tag whose upstream content changed after it was mirrored:
    the sync records and reports it. `derived_tag` names the tag under which the new
    upstream content is to be mirrored, when the policy asks for that.
    """

    tag: str
    action: Action
    reason: str
    derived_tag: str | None = None
    drift: bool = False


def decide(
    tag: Tag | str,
    source_digest: str,
    target_digest: str | None,
    upstream: Mapping[str, str],
    *,
    allow_backwards: bool = False,
    on_rebuild: OnRebuild = OnRebuild.HOLD,
    today: date | None = None,
    target_tags: Mapping[str, str] | None = None,
) -> Decision:
    """Decide for a selected tag from its upstream and mirrored digests.

    `upstream` maps every upstream tag of the repository to its digest, `target_tags`
    the mirror's tags to theirs (used to recognise content mirrored before); `today`
    dates a derived tag and is needed only with `mirror-as-derived-tag`. The tag's class
    comes from the tag grammar.
    """
    tag = parse_tag(tag) if isinstance(tag, str) else tag
    mirrored = target_tags or {}
    if tag.kind is TagKind.SPECIFIC:
        return decide_specific(
            tag.text,
            source_digest,
            target_digest,
            on_rebuild=on_rebuild,
            today=today,
            target_tags=mirrored,
        )
    if tag.kind is TagKind.ROLLING:
        return decide_rolling(
            tag,
            source_digest,
            target_digest,
            upstream,
            allow_backwards=allow_backwards,
            target_tags=mirrored,
        )
    raise ValueError(f"{tag} is neither a specific nor a rolling tag")


def decide_specific(
    tag: str,
    source_digest: str,
    target_digest: str | None,
    *,
    on_rebuild: OnRebuild = OnRebuild.HOLD,
    today: date | None = None,
    target_tags: Mapping[str, str] | None = None,
) -> Decision:
    """A specific tag is created once and never overwritten; a rebuild is drift."""
    if target_digest is None:
        return Decision(tag, Action.CREATE, "create: specific")
    if target_digest == source_digest:
        return Decision(tag, Action.SKIP, "skip: up to date")
    reason = f"hold: upstream rebuilt specific tag {tag}"
    if on_rebuild is OnRebuild.HOLD:
        return Decision(tag, Action.HOLD, reason, drift=True)
    mirrored = target_tags or {}
    earlier = _derived_with(tag, source_digest, mirrored)
    if earlier is not None:
        return Decision(tag, Action.HOLD, f"{reason} (mirrored as {earlier})", drift=True)
    if today is None:
        raise ValueError("a derived tag needs the date (today)")
    derived = derived_tag(tag, today, taken=mirrored)
    return Decision(tag, Action.HOLD, f"{reason} (new content as {derived})", derived, True)


def derived_tag(tag: str, day: date, taken: Iterable[str] = ()) -> str:
    """`1.5.3-rebuild-20260901`, with `-2`, `-3`... if that name is already `taken`."""
    base = f"{tag}{REBUILD_MARK}{day:%Y%m%d}"
    names, candidate, counter = set(taken), base, 1
    while candidate in names:
        counter += 1
        candidate = f"{base}-{counter}"
    return validate_tag(candidate)


def rebuilt_from(tag: str) -> tuple[str, date] | None:
    """For a derived tag (`1.5.3-rebuild-20260901`), the original tag and the date."""
    match = _REBUILD_TAG.fullmatch(tag)
    if match is None:
        return None
    try:
        day = date(int(match["day"][:4]), int(match["day"][4:6]), int(match["day"][6:]))
    except ValueError:
        return None
    return match["tag"], day


def _derived_with(tag: str, digest: str, mirrored: Mapping[str, str]) -> str | None:
    for name, held in sorted(mirrored.items()):
        origin = rebuilt_from(name)
        if origin is not None and origin[0] == tag and held == digest:
            return name
    return None


@dataclass(frozen=True, slots=True)
class _Specific:
    version: Version
    text: str
    digest: str


def decide_rolling(
    tag: Tag,
    source_digest: str,
    target_digest: str | None,
    upstream: Mapping[str, str],
    *,
    allow_backwards: bool = False,
    target_tags: Mapping[str, str] | None = None,
) -> Decision:
    """A rolling tag moves only to the newest specific version of its line.

    `allow_backwards` lets it follow upstream to any specific version of its line,
    older ones included.
    """
    family = _family(tag, upstream)
    if not family:
        reason = f"hold: no specific tag of line {tag.line} upstream for rolling {tag}"
        return Decision(tag.text, Action.HOLD, reason)
    moving_to = _holding(source_digest, family)
    if moving_to is None:
        reason = f"hold: rolling {tag} points to content no specific tag of line {tag.line} has"
        return Decision(tag.text, Action.HOLD, reason)
    if target_digest == source_digest:
        return Decision(tag.text, Action.SKIP, "skip: up to date")
    known = family + _family(tag, target_tags or {})
    current = _holding(target_digest, known) if target_digest is not None else None
    return _move(
        tag,
        moving_to,
        family[-1],
        current,
        new=target_digest is None,
        allow_backwards=allow_backwards,
    )


def _move(
    tag: Tag,
    moving_to: _Specific,
    newest: _Specific,
    current: _Specific | None,
    *,
    new: bool,
    allow_backwards: bool,
) -> Decision:
    backwards = current is not None and moving_to.version < current.version
    if backwards and not allow_backwards:
        reason = f"hold: rolling {tag} would move backwards to {moving_to.text}"
        return Decision(tag.text, Action.HOLD, reason)
    if moving_to.version < newest.version and not allow_backwards:
        reason = f"hold: rolling {tag} upstream is {moving_to.text}, not the newest {newest.text}"
        return Decision(tag.text, Action.HOLD, reason)
    action = Action.CREATE if new else Action.UPDATE
    note = " (backwards, allowed)" if backwards else ""
    return Decision(tag.text, action, f"{action}: rolling {tag} -> {moving_to.text}{note}")


def _family(rolling: Tag, tags: Mapping[str, str]) -> list[_Specific]:
    """The specific tags of the rolling tag's line and variant, oldest first."""
    family = []
    for text, digest in tags.items():
        tag = parse_tag(text)
        if tag.version is None or tag.line != rolling.line:
            continue
        if tag.arch == rolling.arch and tag.debug == rolling.debug:
            family.append(_Specific(tag.version, text, digest))
    return sorted(family, key=lambda specific: specific.version)


def _holding(digest: str, family: Iterable[_Specific]) -> _Specific | None:
    """The newest specific version in `family` with this content."""
    holding = [specific for specific in family if specific.digest == digest]
    return max(holding, key=lambda specific: specific.version, default=None)


@dataclass(frozen=True, slots=True)
class Carry:
    """What travels with a repository's images besides their content: the referrers
    upstream lists for them (only these artifact types, when any are named), and a
    provenance record the mirror attaches to each tag it writes."""

    referrers: bool = True
    artifact_types: tuple[str, ...] = ()
    provenance: bool = True


@dataclass(frozen=True, slots=True)
class Governance:
    """How mirrored tags may change: the policy's choices and the run's flags."""

    on_rebuild: Mapping[str, OnRebuild] = field(default_factory=dict)
    allow_backwards: bool = False
    today: date | None = None
    carry: Mapping[str, Carry] = field(default_factory=dict)

    def carry_for(self, repository: str) -> Carry:
        return self.carry.get(repository, Carry())

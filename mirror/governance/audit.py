"""Auditing a mirror against its policy: which target tags break the rules, and what to do.

`audit` is a pure function from what was observed about each repository (the target's
tags and digests, upstream's, the policy's verdicts, the ledger's records, lock states)
to `Violation`s; `engine.gather` collects those observations from the stores and the
ledger.

Rules, each finding naming the tag and what to do about it:

    convention      error    the policy never mirrors such a tag: latest, .debug, a
                             release candidate or per-architecture tag it excludes,
                             an unrecognised name
    out-of-policy   warning  a well-formed tag outside the policy's lines, versions or
                             keep_newest
    unlocked        error    a specific (or derived) tag is writable, where the
                             registry reports lock states
    rolling-behind  warning  a rolling tag is not at upstream's newest specific
                             version of its line
    tampered        error    the digest is not what the ledger last recorded for the
                             tag in the target
    drift           warning  upstream rebuilt a specific tag after it was mirrored;
                             the mirror kept its copy
    digest-differs  error    a specific tag differs from upstream and the ledger has
                             no record of mirror writing it

Derived tags (`1.5.3-rebuild-20260901`, written for a rebuild under
`on_rebuild: mirror-as-derived-tag`) follow the convention when their original tag does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from mirror.governance.decide import rebuilt_from
from mirror.governance.selection import Verdict
from mirror.governance.versions import Tag, TagKind, parse_tag

# Verdict reasons of a well-formed tag the policy's scope leaves out (mirror.governance.policy).
_OUT_OF_SCOPE = ("out of range", "outside versions", "older than the newest", "no policy rule")


@dataclass(frozen=True, slots=True)
class Recorded:
    """The latest digests the ledger recorded for a tag: upstream, and in the target."""

    source: str | None = None
    target: str | None = None


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Violation:
    """One target tag that breaks a rule of the audit, and what to do about it."""

    rule: str
    severity: Severity
    repository: str
    tag: str
    message: str


class LockStates(Protocol):
    """Whether a registry refuses writes to a tag (ACR's `writeEnabled: false`); None
    when the registry cannot say."""

    def is_locked(self, repository: str, tag: str) -> bool | None: ...


@dataclass(frozen=True)
class RepositoryState:
    """What the audit of one repository looks at.

    `target` and `upstream` map tags to digests (`upstream` needs only the target's tags
    and the newest specific tag of each rolling tag's line); `verdicts` are the policy's
    for the target's tags; `recorded` the ledger's latest digests per tag; `locked` the
    lock states known (a tag missing from it is not judged).
    """

    repository: str
    target: Mapping[str, str]
    upstream: Mapping[str, str] = field(default_factory=dict)
    verdicts: Mapping[str, Verdict] = field(default_factory=dict)
    recorded: Mapping[str, Recorded] = field(default_factory=dict)
    locked: Mapping[str, bool] = field(default_factory=dict)


def audit(states: Iterable[RepositoryState]) -> list[Violation]:
    """Every finding for every repository, in repository then tag version order."""
    return [finding for state in states for finding in audit_repository(state)]


def audit_repository(state: RepositoryState) -> list[Violation]:
    findings: list[Violation] = []
    for text in sorted(state.target, key=lambda t: parse_tag(t).sort_key):
        findings += _audit_tag(state, text)
    return findings


def _audit_tag(state: RepositoryState, text: str) -> list[Violation]:
    tag = parse_tag(text)
    derived = _is_derived(state, text)
    if not derived:
        shape = _convention(state, tag)
        if shape is not None:
            return [shape]
    checks = (
        _scope(state, tag) if not derived else None,
        _unlocked(state, tag, derived),
        _rolling_behind(state, tag),
        _digest(state, tag),
    )
    return [finding for finding in checks if finding is not None]


def _finding(
    rule: str, severity: Severity, state: RepositoryState, tag: Tag | str, message: str
) -> Violation:
    return Violation(rule, severity, state.repository, str(tag), message)


def _short(digest: str | None) -> str:
    if digest is None:
        return "nothing"
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}"


def _is_derived(state: RepositoryState, text: str) -> bool:
    origin = rebuilt_from(text)
    if origin is None:
        return False
    verdict = state.verdicts.get(origin[0])
    return origin[0] in state.target or (verdict is not None and verdict.selected)


def _convention(state: RepositoryState, tag: Tag) -> Violation | None:
    verdict = state.verdicts.get(tag.text)
    if verdict is None or verdict.selected or _out_of_scope(verdict):
        return None
    reason = verdict.reason.removeprefix("skip: ")
    message = (
        f"{reason}: the policy never mirrors a tag like this, so it did not come from "
        "mirror; find out who pushed it, then delete it from the target"
    )
    return _finding("convention", Severity.ERROR, state, tag, message)


def _out_of_scope(verdict: Verdict) -> bool:
    return any(marker in verdict.reason for marker in _OUT_OF_SCOPE)


def _scope(state: RepositoryState, tag: Tag) -> Violation | None:
    verdict = state.verdicts.get(tag.text)
    if verdict is None or not _out_of_scope(verdict):
        return None
    reason = verdict.reason.removeprefix("skip: ")
    message = (
        f"{reason}: the policy no longer mirrors it; keep it while devices pull it, "
        "or delete it, or widen the policy"
    )
    return _finding("out-of-policy", Severity.WARNING, state, tag, message)


def _unlocked(state: RepositoryState, tag: Tag, derived: bool) -> Violation | None:
    if tag.kind is not TagKind.SPECIFIC and not derived:
        return None
    if state.locked.get(tag.text, True):
        return None
    message = (
        f"specific tag is writable: lock it so nobody can overwrite it "
        f"(az acr repository update --name REGISTRY --image {state.repository}:{tag} "
        "--write-enabled false)"
    )
    return _finding("unlocked", Severity.ERROR, state, tag, message)


def _rolling_behind(state: RepositoryState, tag: Tag) -> Violation | None:
    if tag.kind is not TagKind.ROLLING:
        return None
    newest = newest_of_line(tag, state.upstream)
    if newest is None or state.target[tag.text] == state.upstream[newest.text]:
        return None
    current = _newest_holding(tag, state.target, state.target[tag.text])
    if current is not None and current.sort_key > newest.sort_key:
        return None
    at = current.text if current is not None else _short(state.target[tag.text])
    message = (
        f"rolling tag is at {at}, upstream's newest of line {tag.line} is {newest}: run mirror sync"
    )
    return _finding("rolling-behind", Severity.WARNING, state, tag, message)


def _family(rolling: Tag, tags: Iterable[str]) -> list[Tag]:
    """The specific tags of the rolling tag's line and variant."""
    parsed = (parse_tag(text) for text in tags)
    return [
        t
        for t in parsed
        if t.kind is TagKind.SPECIFIC
        and t.line == rolling.line
        and t.arch == rolling.arch
        and t.debug == rolling.debug
    ]


def newest_of_line(rolling: Tag, tags: Iterable[str]) -> Tag | None:
    """The newest specific tag among `tags` of the rolling tag's line and variant."""
    return max(_family(rolling, tags), key=lambda t: t.sort_key, default=None)


def _newest_holding(rolling: Tag, tags: Mapping[str, str], digest: str) -> Tag | None:
    holding = [t for t in _family(rolling, tags) if tags[t.text] == digest]
    return max(holding, key=lambda t: t.sort_key, default=None)


def _digest(state: RepositoryState, tag: Tag) -> Violation | None:
    digest = state.target[tag.text]
    record = state.recorded.get(tag.text, Recorded())
    if record.target is not None and record.target != digest:
        message = (
            f"holds {_short(digest)}, but mirror last recorded {_short(record.target)} "
            "here: it was changed outside mirror; find out who pushed it, then restore it "
            "(delete the tag and run mirror sync)"
        )
        return _finding("tampered", Severity.ERROR, state, tag, message)
    if tag.kind is not TagKind.SPECIFIC:
        return None
    upstream = state.upstream.get(tag.text) or record.source
    if upstream is None or upstream == digest:
        return None
    if record.target == digest:
        message = (
            f"upstream rebuilt it (now {_short(upstream)}); the mirror keeps "
            f"{_short(digest)} as mirrored: review the rebuild before adopting it"
        )
        return _finding("drift", Severity.WARNING, state, tag, message)
    message = (
        f"holds {_short(digest)}, upstream has {_short(upstream)}, and the ledger has no "
        "record of mirror writing it: drift or tampering; compare the two images, then "
        "delete the tag and run mirror sync if the target's copy is not to be trusted"
    )
    return _finding("digest-differs", Severity.ERROR, state, tag, message)


# --- gathering ------------------------------------------------------------------------


__all__ = [
    "LockStates",
    "Recorded",
    "RepositoryState",
    "Severity",
    "Violation",
    "audit",
    "audit_repository",
    "newest_of_line",
]

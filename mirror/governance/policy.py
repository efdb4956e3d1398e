"""Tag policies: which upstream tags to mirror, and how mirrored tags may change.

A policy is a YAML file in `policies/` (format in `policies/README.md`), validated at
load: regexes and version ranges are compiled then, and a malformed file raises one
`ConfigError` naming the file, the line and the key. Everything else here is pure:
- `evaluate` gives each upstream tag of a repository a `Verdict` (selected or skipped,
  its class, the reason);
- `decide` tells the sync what to do with one selected tag once the digests are known:
  a specific tag already mirrored is never overwritten (an upstream rebuild is held,
  reported as drift, and optionally mirrored under a derived tag), a rolling tag only
  moves forward, to the newest specific version of its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic.types import StrictBool, StrictInt

from mirror.errors import ConfigError
from mirror.governance.decide import Carry, OnRebuild
from mirror.governance.releases import ReleaseFeed, embedded_feed
from mirror.governance.selection import Verdict
from mirror.governance.versions import Line, Tag, Version, VersionRange, parse_tag
from mirror.reference import validate_repository
from mirror.yamlfile import KeyPath, located, parse_model, read_text, read_yaml

DEFAULT_POLICY = Path(__file__).parents[1] / "policies" / "iotedge-runtime.yaml"


# --- the policy model ---------------------------------------------------------------


def _string(value: object, what: str) -> str:
    """`value` if it is a string; pydantic reports a ValueError (not a TypeError)."""
    if isinstance(value, str):
        return value
    raise ValueError(f"must be {what} (a string)")


def _repository(value: object) -> str:
    return validate_repository(_string(value, "a repository name"))


def _regex(value: object) -> re.Pattern[str]:
    pattern = _string(value, "a regular expression")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression {pattern!r}: {exc}") from None


def _range(value: object) -> VersionRange | None:
    if value is None:
        return None
    return VersionRange.parse(_string(value, "a version range such as '>=1.5,<1.7'"))


def _lines(value: object) -> frozenset[Line] | None:
    if value is None or value == "feed":
        return None
    if not isinstance(value, list) or not value:
        raise ValueError("must be 'feed' or a list of lines such as ['1.5', '1.6']")
    return frozenset(Line.parse(_string(line, "a line such as '1.5'")) for line in value)


def _artifact_type(value: object) -> str:
    text = _string(value, "a media type such as 'application/vnd.cncf.notary.signature'")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*", text):
        raise ValueError(f"not a media type: {text!r}")
    return text


Repository = Annotated[str, PlainValidator(_repository)]
Regex = Annotated[re.Pattern[str], PlainValidator(_regex)]


class PolicyRule(BaseModel):
    """How the tags of some repositories are selected and treated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repositories: tuple[Repository, ...] = Field(min_length=1)
    lines: Annotated[frozenset[Line] | None, PlainValidator(_lines)] = None
    versions: Annotated[VersionRange | None, PlainValidator(_range)] = None
    kinds: tuple[Literal["specific", "rolling"], ...] = Field(
        default=("specific", "rolling"), min_length=1
    )
    prereleases: StrictBool = False
    per_architecture: StrictBool = False
    keep_newest: StrictInt | None = Field(default=None, ge=1)
    allow: tuple[Regex, ...] = ()
    deny: tuple[Regex, ...] = ()
    on_rebuild: OnRebuild = OnRebuild.HOLD
    referrers: StrictBool = True
    artifact_types: tuple[Annotated[str, PlainValidator(_artifact_type)], ...] = ()
    provenance: StrictBool = True

    @property
    def carry(self) -> Carry:
        """What travels with the images this rule selects."""
        return Carry(self.referrers, self.artifact_types, self.provenance)


class Policy(BaseModel):
    """A policy file: a format version, a description and its rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    description: str = ""
    rules: tuple[PolicyRule, ...] = Field(min_length=1)

    def rule_for(self, repository: str) -> PolicyRule | None:
        """The rule that governs `repository`, if any."""
        return next((rule for rule in self.rules if repository in rule.repositories), None)

    @property
    def repositories(self) -> tuple[str, ...]:
        """Every repository the policy governs, in the order the rules name them."""
        return tuple(repo for rule in self.rules for repo in rule.repositories)


# --- loading ------------------------------------------------------------------------


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file; raise `ConfigError` naming file, line and key."""
    return parse_policy(read_text(path, "policy"), str(path))


def load_policies(directory: Path) -> dict[str, Policy]:
    """Every `*.yaml` policy in `directory`, by file name without the extension."""
    return {path.stem: load_policy(path) for path in sorted(directory.glob("*.yaml"))}


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate the YAML text of a policy; `source` names it in error messages."""
    return _checked(parse_model(text, source, Policy, what="policy", empty_ok=False), source, text)


def _checked(policy: Policy, source: str, text: str) -> Policy:
    problem = _overlap(policy)
    if problem is not None:
        root, _ = read_yaml(text, source)
        raise located(source, root, *problem)
    return policy


def _overlap(policy: Policy) -> tuple[KeyPath, str] | None:
    """A repository governed by two rules, as (location, problem)."""
    owner: dict[str, int] = {}
    for index, rule in enumerate(policy.rules):
        for position, repository in enumerate(rule.repositories):
            if repository in owner:
                where = ("rules", index, "repositories", position)
                return where, f"{repository} is already governed by rules[{owner[repository]}]"
            owner[repository] = index
    return None


def parse_lines(text: str) -> frozenset[Line]:
    """A comma-separated list of lines (`1.5,1.6`), as a setting overriding the feed."""
    try:
        return frozenset(Line.parse(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


# --- evaluation ---------------------------------------------------------------------


Check = Callable[[PolicyRule, Tag, frozenset[Line]], str | None]


def _structure(_rule: PolicyRule, tag: Tag, _lines: frozenset[Line]) -> str | None:
    if tag.is_latest:
        return "latest is not mirrored"
    if not tag.recognised:
        return "unrecognised tag"
    if tag.debug:
        return "debug image"
    return None


def _patterns(rule: PolicyRule, tag: Tag, _lines: frozenset[Line]) -> str | None:
    denied = next((p for p in rule.deny if p.fullmatch(tag.text)), None)
    if denied is not None:
        return f"denied by {denied.pattern!r}"
    if rule.allow and not any(p.fullmatch(tag.text) for p in rule.allow):
        return "matches no allow pattern"
    return None


def _kind(rule: PolicyRule, tag: Tag, _lines: frozenset[Line]) -> str | None:
    if tag.kind.value not in rule.kinds:
        return f"{tag.kind} tags are not mirrored"
    return None


def _variant(rule: PolicyRule, tag: Tag, _lines: frozenset[Line]) -> str | None:
    if tag.prerelease and not rule.prereleases:
        return "pre-release"
    if tag.per_arch and not rule.per_architecture:
        return "per-architecture tag"
    return None


def _range_check(rule: PolicyRule, tag: Tag, lines: frozenset[Line]) -> str | None:
    if tag.line not in lines:
        return f"line {tag.line} out of range"
    if rule.versions is not None and not rule.versions.admits(tag):
        shown = tag.version or f"line {tag.line}"
        return f"{shown} outside versions {rule.versions}"
    return None


_CHECKS: tuple[Check, ...] = (_structure, _patterns, _kind, _variant, _range_check)


def evaluate(
    policy: Policy,
    repository: str,
    tags: Iterable[str],
    *,
    lines: Iterable[Line] | None = None,
    feed: ReleaseFeed | None = None,
) -> tuple[Verdict, ...]:
    """A verdict for each upstream tag of `repository`, in IoT Edge version order.

    The lines mirrored are `lines` if given (a setting), else the rule's `lines`, else
    the lines `feed` (default: the embedded copy) lists as current for the repository.
    """
    parsed = sorted({parse_tag(text) for text in tags}, key=lambda tag: tag.sort_key)
    rule = policy.rule_for(repository)
    if rule is None:
        reason = f"skip: no policy rule for {repository}"
        return tuple(Verdict.of(tag, False, reason) for tag in parsed)
    current = resolve_lines(rule, repository, lines=lines, feed=feed)
    verdicts = [_screen(rule, tag, current) for tag in parsed]
    return tuple(_keep_newest(rule, verdicts))


def resolve_lines(
    rule: PolicyRule,
    repository: str,
    *,
    lines: Iterable[Line] | None = None,
    feed: ReleaseFeed | None = None,
) -> frozenset[Line]:
    """The lines to mirror for `repository`: the setting, the rule's, or the feed's."""
    if lines is not None:
        return frozenset(lines)
    if rule.lines is not None:
        return rule.lines
    current = (feed or embedded_feed()).current_lines(repository)
    if not current:
        raise ConfigError(
            f"the release feed lists no current line for {repository}; set `lines` in its rule"
        )
    return current


def _screen(rule: PolicyRule, tag: Tag, lines: frozenset[Line]) -> Verdict:
    for check in _CHECKS:
        reason = check(rule, tag, lines)
        if reason is not None:
            return Verdict.of(tag, False, f"skip: {reason}")
    return Verdict.of(tag, True, f"select: {tag.kind}")


def _keep_newest(rule: PolicyRule, verdicts: list[Verdict]) -> list[Verdict]:
    if rule.keep_newest is None:
        return verdicts
    kept = _newest_versions(verdicts, rule.keep_newest)
    return [_drop_if_older(verdict, kept, rule.keep_newest) for verdict in verdicts]


def _newest_versions(verdicts: list[Verdict], count: int) -> frozenset[Version]:
    per_line: dict[Line, set[Version]] = {}
    for verdict in verdicts:
        version = verdict.parsed.version
        if verdict.selected and version is not None:
            per_line.setdefault(version.line, set()).add(version)
    return frozenset(v for versions in per_line.values() for v in sorted(versions)[-count:])


def _drop_if_older(verdict: Verdict, kept: frozenset[Version], count: int) -> Verdict:
    version = verdict.parsed.version
    if not verdict.selected or version is None or version in kept:
        return verdict
    reason = f"skip: older than the newest {count} of line {version.line}"
    return Verdict.of(verdict.parsed, False, reason)


def selected(verdicts: Iterable[Verdict]) -> tuple[Verdict, ...]:
    """The verdicts that select their tag."""
    return tuple(verdict for verdict in verdicts if verdict.selected)


__all__ = [
    "DEFAULT_POLICY",
    "Policy",
    "PolicyRule",
    "evaluate",
    "load_policies",
    "load_policy",
    "parse_lines",
    "parse_policy",
    "resolve_lines",
    "selected",
]

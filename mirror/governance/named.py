"""Tags a deployment names: selected on top of the policy's selection, or instead of it.

`mirror sync --from-manifests` mirrors what the manifests name (`Naming.references`,
per repository: a tag or a digest, with who names it) and, where the policy also
applies (`Naming.policy`: edgeAgent and edgeHub, the configured repositories), what
the policy selects as well. Everything else upstream is skipped.

A named tag keeps its class, so `decide` still guards it: a specific tag is written
once, a rolling tag only moves forward. A rolling tag (`1.1`) is decided against the
specific tags of its line, so the newest one upstream (`1.1.13`, the content `1.1`
should name) is selected with it: same content, no extra bytes, and a record of which
version the device runs. `latest` and debug images are not mirrored
even when named, unless the user allows them (`allow`): they are what the production
checklist says a device must not run. A digest is selected as itself (it is in no tag
listing); a tag upstream does not have is reported, not guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mirror.digest import is_digest
from mirror.governance.audit import newest_of_line
from mirror.governance.selection import Selector, Verdict
from mirror.governance.versions import Tag, TagKind, parse_tag

LATEST, DEBUG = "latest", "debug"


@dataclass(frozen=True)
class Naming:
    """What deployments name: per repository, each reference and who names it (`file:
    line (module)`); where the policy's own selection applies too; what is allowed."""

    references: Mapping[str, Mapping[str, str]]
    policy: frozenset[str] = frozenset()
    allow: frozenset[str] = field(default_factory=frozenset)

    def selector(self, policy: Selector) -> Selector:
        """The selection: `policy`'s where it applies, plus every reference named."""

        def select(repository: str, tags: Sequence[str]) -> list[Verdict]:
            return self._select(policy, repository, tags)

        return select

    def _select(self, policy: Selector, repository: str, tags: Sequence[str]) -> list[Verdict]:
        if repository in self.policy:
            verdicts = {v.tag: v for v in policy(repository, tags)}
        else:
            skip = "skip: no deployment names it"
            verdicts = {t: Verdict.of(parse_tag(t), False, skip) for t in tags}
        listed = set(tags)
        for reference, named_by in self.references.get(repository, {}).items():
            chosen = [(reference, self._verdict(reference, named_by, listed))]
            if chosen[0][1].selected and (newest := _newest_of_line(reference, tags)):
                reason = f"select: the newest of rolling {reference}, named by {named_by}"
                chosen.append((newest.text, Verdict.of(newest, True, reason)))
            for tag, verdict in chosen:
                earlier = verdicts.get(tag)
                if earlier is None or not earlier.selected:
                    verdicts[tag] = verdict
        return list(verdicts.values())

    def _verdict(self, reference: str, named_by: str, listed: set[str]) -> Verdict:
        tag = parse_tag(reference)
        refused = self._refused(tag)
        if refused is not None:
            return Verdict.of(tag, False, f"skip: named by {named_by}, but {refused}")
        if not is_digest(reference) and reference not in listed:
            return Verdict.of(tag, False, f"skip: named by {named_by}, but not upstream")
        return Verdict.of(tag, True, f"select: named by {named_by}")

    def _refused(self, tag: Tag) -> str | None:
        if tag.is_latest and LATEST not in self.allow:
            return "latest is not mirrored (--allow latest)"
        if (tag.debug or tag.text.endswith(".debug")) and DEBUG not in self.allow:
            return "a debug image is not mirrored (--allow debug)"
        return None


def _newest_of_line(reference: str, tags: Sequence[str]) -> Tag | None:
    """For a rolling tag, the newest released specific tag of its line (and variant) in
    `tags`; a prerelease is never what a rolling tag stands for."""
    rolling = parse_tag(reference)
    if rolling.kind is not TagKind.ROLLING:
        return None
    return newest_of_line(rolling, [t for t in tags if not parse_tag(t).prerelease])

"""Choosing which upstream tags are mirrored: the `Verdict` each tag gets and why.

A `Selector` gives every upstream tag of a repository a verdict. The policy file's
selector is `policy.evaluate` (the rules in `policies/`); `select_all` is `--all-tags`.
Either way the tags keep their class from the tag grammar, so the protections of
`decide` (specific tags write-once, rolling tags forward only) still apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mirror.governance.versions import Tag, TagKind, parse_tag


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one upstream tag is mirrored, and why.

    `kind` is the tag's class: `specific` (immutable), `rolling` (moves forward) or
    `other`; `parsed` is the tag as the grammar reads it.
    """

    tag: str
    selected: bool
    reason: str
    kind: TagKind
    parsed: Tag

    @classmethod
    def of(cls, tag: Tag, selected: bool, reason: str) -> Verdict:
        return cls(tag.text, selected, reason, tag.kind, tag)


Selector = Callable[[str, Sequence[str]], Sequence[Verdict]]
"""What chooses among a repository's upstream tags: a policy's `evaluate`, or all."""


def select_all(repository: str, tags: Sequence[str]) -> list[Verdict]:
    """`--all-tags`: every tag (still classified, so protections apply)."""
    return [Verdict.of(parse_tag(tag), True, "select: --all-tags") for tag in tags]

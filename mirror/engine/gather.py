"""What `mirror tags audit` looks at, collected from the stores and the ledger.

`gather` observes each repository (one tag listing per side, one HEAD per target tag,
one upstream HEAD per target tag upstream also has and per rolling line's newest tag)
into the `RepositoryState`s that `governance.audit` judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mirror.engine.pool import map_limited
from mirror.governance.audit import LockStates, RepositoryState, newest_of_line
from mirror.governance.selection import Selector
from mirror.governance.versions import TagKind, parse_tag
from mirror.transport.store import tags_or_empty

if TYPE_CHECKING:
    from mirror.ledger import Ledger
    from mirror.transport.store import Store


def gather(
    source: Store,
    target: Store,
    repositories: Sequence[str],
    select: Selector,
    *,
    ledger: Ledger | None = None,
    target_name: str | None = None,
    locks: LockStates | None = None,
    concurrency: int = 8,
) -> list[RepositoryState]:
    """Observe each repository: one tag listing per side, one HEAD per target tag, one
    upstream HEAD per target tag upstream also has and per rolling line's newest tag.

    `target_name` selects the ledger's records of this target (a ledger may be shared).
    """
    return [
        _gather_one(source, target, repo, select, ledger, target_name, locks, concurrency)
        for repo in repositories
    ]


def _gather_one(
    source: Store,
    target: Store,
    repository: str,
    select: Selector,
    ledger: Ledger | None,
    target_name: str | None,
    locks: LockStates | None,
    concurrency: int,
) -> RepositoryState:
    target_tags = tags_or_empty(target, repository)
    upstream_tags = tags_or_empty(source, repository)
    judged = select(repository, sorted(set(target_tags) | set(upstream_tags)))
    verdicts = {v.tag: v for v in judged if v.tag in target_tags}
    wanted = _upstream_wanted(target_tags, upstream_tags)

    def resolve(job: tuple[Store, str]) -> str | None:
        found = job[0].resolve(repository, job[1])
        return None if found is None else found.digest

    jobs = [(target, tag) for tag in target_tags] + [(source, tag) for tag in wanted]
    digests = map_limited(concurrency, resolve, jobs)
    held = dict(zip(target_tags, digests[: len(target_tags)], strict=True))
    upstream = dict(zip(wanted, digests[len(target_tags) :], strict=True))
    recorded = (
        {} if ledger is None else ledger.recorded(repository, target_tags, target=target_name)
    )
    return RepositoryState(
        repository,
        {tag: digest for tag, digest in held.items() if digest is not None},
        {tag: digest for tag, digest in upstream.items() if digest is not None},
        verdicts,
        recorded,
        _lock_states(locks, repository, target_tags),
    )


def _upstream_wanted(target_tags: Sequence[str], upstream_tags: Sequence[str]) -> list[str]:
    """Upstream tags the audit needs: the target's, and each rolling line's newest."""
    present = set(upstream_tags)
    wanted = {tag for tag in target_tags if tag in present}
    for text in target_tags:
        tag = parse_tag(text)
        if tag.kind is TagKind.ROLLING:
            newest = newest_of_line(tag, upstream_tags)
            if newest is not None:
                wanted.add(newest.text)
    return sorted(wanted)


def _lock_states(locks: LockStates | None, repository: str, tags: Sequence[str]) -> dict[str, bool]:
    if locks is None:
        return {}
    states = {tag: locks.is_locked(repository, tag) for tag in tags}
    return {tag: state for tag, state in states.items() if state is not None}

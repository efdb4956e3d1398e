"""Locking mirrored specific tags on Azure Container Registry (the last phase of a run).

`plan.plan_locks` decides which tags to lock; `apply_locks` locks each one that is in
the target (every child manifest, the index, then the tag) and reports what it locked
and what failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mirror.engine.plan import LockStep
from mirror.engine.pool import map_limited
from mirror.errors import MirrorError
from mirror.transport.acr.metadata import AcrMetadata
from mirror.transport.store import Store


def lock_states(
    metadata: AcrMetadata, repositories: Sequence[str], concurrency: int = 8
) -> dict[str, dict[str, bool]]:
    """repository -> tag -> locked, one listing per repository."""
    listed = map_limited(concurrency, metadata.tag_states, repositories)
    return {
        repo: {tag: attributes.locked for tag, attributes in states.items()}
        for repo, states in zip(repositories, listed, strict=True)
    }


@dataclass
class LockResult:
    """What locking did: the tags now locked, and each lock that failed (what, why)."""

    locked: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def apply_locks(
    target: Store,
    metadata: AcrMetadata,
    locks: Sequence[LockStep],
    written: set[tuple[str, str]],
    concurrency: int = 8,
) -> LockResult:
    """Lock each planned tag that is in the target (children, index, then the tag).

    A tag the sync should have written but did not (it failed) is left alone.
    """
    due = [lock for lock in locks if not lock.after_write or (lock.repository, lock.tag) in written]
    result = LockResult()

    def lock_one(lock: LockStep) -> None:
        try:
            index = target.get_manifest(lock.repository, lock.tag)
            digests = [child.digest for child in index.children()] + [index.digest]
            metadata.lock(lock.repository, lock.tag, digests)
        except MirrorError as error:
            result.failures.append((f"lock {lock.repository}:{lock.tag}", str(error)))
            return
        result.locked.append((lock.repository, lock.tag))

    map_limited(concurrency, lock_one, due)
    return result

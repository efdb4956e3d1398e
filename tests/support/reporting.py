"""A copy reporter for tests: silent, remembering what happened."""

from __future__ import annotations

import collections

from mirror.engine.plan import BlobCopy, ContentPlan, TagWrite


class Quiet:
    """Counts blob outcomes and keeps failures; with `strict`, a failure raises at once
    (for tests whose setup sync must not fail)."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []

    def transfer_started(self, plan: ContentPlan) -> None:
        return None

    def bytes_copied(self, count: int) -> None:
        return None

    def blob_done(self, copy: BlobCopy, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def tag_done(self, write: TagWrite) -> None:
        return None

    def failed(self, what: str, error: BaseException) -> None:
        self.failures.append(f"{what}: {error}")  # kept: a raise in a copy thread is not shown
        if self.strict:
            raise AssertionError(f"{what}: {error}")

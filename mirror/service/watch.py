"""The upstream tag watch: HEAD the rolling tags (`1.5`, `1.6`) of every mirrored line
upstream; one that moved starts a sync of that tag (and the releases it may move to).

The first look is the baseline. A HEAD costs one request per rolling tag, so a watch
every few minutes notices a release without listing any repository's tags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from mirror.errors import MirrorError
from mirror.governance.versions import Line
from mirror.service.polling import Backoff
from mirror.service.triggers import Trigger, rolling_moved
from mirror.transport.store import Store


class TagWatcher:
    """Remembers what each rolling tag pointed at upstream; submits a trigger on a move."""

    def __init__(
        self,
        source: Store,
        repositories: Sequence[str],
        lines: Callable[[str], frozenset[Line]],
        submit: Callable[[Trigger], bool],
        every: float,
    ) -> None:
        self.source = source
        self.repositories = tuple(repositories)
        self.lines = lines
        self.submit = submit
        self.backoff = Backoff(base=every)
        self._seen: dict[tuple[str, Line], str | None] = {}

    def poll(self) -> list[Trigger]:
        if not self.backoff.due():
            return []
        triggers = []
        try:
            for repo in self.repositories:
                for line in sorted(self.lines(repo)):
                    trigger = self._look(repo, line)
                    if trigger is not None and self.submit(trigger):
                        triggers.append(trigger)
        except MirrorError as error:
            self.backoff.failed("watch", str(error))
            return triggers
        self.backoff.succeeded()
        return triggers

    def _look(self, repository: str, line: Line) -> Trigger | None:
        found = self.source.resolve(repository, str(line))
        digest = found.digest if found is not None else None
        key = (repository, line)
        first, before = key not in self._seen, self._seen.get(key)
        self._seen[key] = digest
        if first or digest is None or digest == before:
            return None
        return rolling_moved(repository, line, digest, datetime.now(UTC))

"""One sync at a time: the service's worker thread.

Triggers go into the ledger's queue (`submit`), and the worker wakes. Holding the
target's run lock, it claims every trigger waiting, runs once for all of them (the union
of their scopes), and marks them done; what arrived during the run makes one follow-up
run. A replica that finds the lock held skips the round: the holder claims those
triggers too, since the queue is shared. The queue is also looked at every few seconds,
so that triggers left by a replica that stopped are not forgotten.

`stop` ends the running sync at its next safe point; its triggers go back to the queue,
for the next start to run.
"""

from __future__ import annotations

import functools
import operator
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mirror.engine.report import LogReporter
from mirror.engine.run import INTERRUPTED, Runner, RunReport
from mirror.errors import MirrorError
from mirror.governance.releases import ReleaseFeed
from mirror.governance.scope import Scope
from mirror.ledger.triggers import QueuedTrigger, TriggerQueue
from mirror.logs import get_logger
from mirror.service.triggers import Trigger

POLL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Current:
    """The run under way: since when, why, and what it looks at."""

    started: datetime
    triggers: tuple[QueuedTrigger, ...]
    scope: Scope


class Worker:
    """Runs the queued triggers of one target, one run at a time."""

    def __init__(
        self,
        runner: Runner,
        queue: TriggerQueue,
        on_report: Callable[[RunReport, list[QueuedTrigger]], None],
        feed: Callable[[], ReleaseFeed | None],
        poll: float = POLL_SECONDS,
    ) -> None:
        self.runner = runner
        self.queue = queue
        self.on_report = on_report
        self.feed = feed
        self.poll = poll
        self.claimer = f"worker-{uuid.uuid4()}"
        self.current: Current | None = None
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sync-worker", daemon=True)

    def submit(self, trigger: Trigger) -> bool:
        """Queue `trigger` (in the ledger) and wake the worker; False for a duplicate."""
        queued = self.queue.put(
            trigger.key, trigger.kind, trigger.scope.to_json(), trigger.detail, trigger.seen
        )
        if queued:
            self._wake.set()
        return queued

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float) -> bool:
        """Stop at the next safe point; True when the worker ended within `grace`."""
        self.stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(grace)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if self.stopping.is_set():
                return
            try:
                ran = self._round()
            except MirrorError as error:  # the ledger is down: say so, try again later
                get_logger().error("worker.failed", error=str(error))
                ran = False
            if ran:
                self._wake.set()  # what queued up meanwhile: one follow-up run

    def _round(self) -> bool:
        """Claim and run what is queued; True when a run happened."""
        with self.runner.exclusive() as mine:
            if not mine:
                return False
            claimed = self.queue.claim(self.claimer)
            if not claimed:
                return False
            scope = functools.reduce(operator.or_, (Scope.from_json(t.scope) for t in claimed))
            self.current = Current(datetime.now(UTC), tuple(claimed), scope)
            try:
                report = self._run(claimed, scope)
            finally:
                self.current = None
            state = "pending" if report.state == INTERRUPTED else report.state
            self.queue.finish(self.claimer, report.run_id, report.finished, state)
        self.on_report(report, claimed)
        return not self.stopping.is_set()

    def _run(self, claimed: list[QueuedTrigger], scope: Scope) -> RunReport:
        kinds = "+".join(sorted({t.kind for t in claimed}))
        log = get_logger()
        log.info("run.start", trigger=kinds, scope=str(scope), triggers=len(claimed))
        report = self.runner.run(
            LogReporter(), scope=scope, stop=self.stopping, triggered_by=kinds, feed=self.feed()
        )
        written = len(report.outcome.result.tags) if report.outcome else 0
        log.info(
            "run.done",
            outcome=report.state,
            trigger=kinds,
            tags_written=written,
            seconds=round(report.seconds, 2),
            run=report.run_id,
        )
        if report.error is not None:
            log.error("run.failed", error=str(report.error))
        return report

"""One run of a job, as `mirror sync` and the service start it: one run at a time per
target (the ledger's run lock), the sync itself, and its record in the ledger.

A run ends `completed`, `failed` (something was not copied, or the run could not start:
a registry unreachable, a repository unknown) or `interrupted` (stopped at a safe
point); every one is recorded, with what started it. A run that finds the target's
lock held by another process does not start (`skipped`). A ledger that cannot be
reached does not stop a run: it runs without the lock, and the failure to record is
reported.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mirror.engine.connect import acr_metadata, open_store
from mirror.engine.copy import CopyReporter
from mirror.engine.provenance import Run, attach_provenance
from mirror.engine.referrers import Memory
from mirror.engine.sync import SyncOutcome, sync
from mirror.errors import MirrorError
from mirror.governance.scope import EVERYTHING, Scope
from mirror.logs import get_logger
from mirror.transport.registry import RegistryClient

if TYPE_CHECKING:
    from mirror.engine.job import Job
    from mirror.governance.releases import ReleaseFeed
    from mirror.ledger import Ledger, Owed

COMPLETED, FAILED, INTERRUPTED, SKIPPED = "completed", "failed", "interrupted", "skipped"


@dataclass
class RunReport:
    """How one run went: its state, what the sync did, and its record in the ledger."""

    state: str
    started: datetime
    finished: datetime
    seconds: float = 0.0
    outcome: SyncOutcome | None = None
    error: MirrorError | None = None  # what stopped the run before it could copy
    run_id: str | None = None
    ledger_error: MirrorError | None = None
    triggered_by: str = "cli"
    scope: Scope = field(default=EVERYTHING)

    recorded: bool = False


class Runner:
    """Runs one job against one ledger (opened by the caller)."""

    def __init__(self, job: Job, ledger: Ledger, *, allow_backwards: bool = False) -> None:
        self.job = job
        self.ledger = ledger
        self.allow_backwards = allow_backwards

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the target's run lock for the block: True when this process may run.

        A ledger that cannot be reached gives no lock: the run goes ahead without one
        (a job must not stop because its record keeping is down), and says so.
        """
        lock = self.ledger.run_lock(self.job.target)
        try:
            held = lock.acquire()
        except MirrorError as error:
            get_logger().warning("run.unlocked", target=self.job.target, error=str(error))
            yield True
            return
        try:
            yield held
        finally:
            if held:
                lock.release()

    def run(
        self,
        reporter: CopyReporter,
        *,
        scope: Scope = EVERYTHING,
        stop: threading.Event | None = None,
        triggered_by: str = "cli",
        feed: ReleaseFeed | None = None,
    ) -> RunReport:
        """Sync (within `scope`), then record the run. Call inside `exclusive()`.
        `feed` is the release feed the policy's lines come from (default: the shipped
        copy)."""
        stop = stop or threading.Event()
        clock, started = time.monotonic(), datetime.now(UTC)
        report = RunReport(FAILED, started, started, triggered_by=triggered_by, scope=scope)
        report.run_id = str(uuid.uuid4())
        try:
            report.outcome = self._sync(reporter, report, stop, feed)
        except MirrorError as error:
            report.error = error
        report.state = _state(report)
        report.finished = datetime.now(UTC)
        report.seconds = time.monotonic() - clock
        self._record(report)
        return report

    def _sync(
        self,
        reporter: CopyReporter,
        report: RunReport,
        stop: threading.Event,
        feed: ReleaseFeed | None,
    ) -> SyncOutcome:
        job = self.job
        source = open_store(job.source, job.config)
        target = open_store(job.target, job.config, push=True)
        governance = job.governance(self.allow_backwards)
        metadata = acr_metadata(target, job.config)
        try:
            outcome = sync(
                source,
                target,
                job.repositories,
                reporter,
                select=job.selector(feed),
                governance=governance,
                concurrency=job.concurrency,
                metadata=metadata,
                scope=report.scope,
                stop=stop,
                memory=self._memory(),
            )
            if isinstance(target, RegistryClient):
                run = Run(
                    report.run_id or "", job.source, job.target, report.triggered_by, report.started
                )
                outcome.provenance = attach_provenance(
                    target,
                    run,
                    outcome,
                    governance,
                    job.config,
                    acr=metadata is not None,
                    owed=self._owed(),
                    listed=self._listed(report.scope, outcome),
                )
            return outcome
        finally:
            source.close()
            target.close()

    def _memory(self) -> Memory:
        """What earlier runs learned of referrers (nothing, if the ledger cannot say)."""
        try:
            return self.ledger.referrer_memory(self.job.target)
        except MirrorError as error:
            get_logger().warning("ledger.referrers_unread", error=str(error))
            return {}

    def _listed(self, scope: Scope, outcome: SyncOutcome) -> list[str]:
        """The repositories the run looked at in full: every tag upstream lists."""
        if not scope.every_tag or outcome.unlisted:
            return []
        return scope.repositories_of(self.job.repositories)

    def _owed(self) -> list[Owed]:
        """The provenance records earlier runs could not attach (none, if the ledger
        cannot say: they stay owed for a run that can)."""
        try:
            return self.ledger.provenance_owed(self.job.target)
        except MirrorError as error:
            get_logger().warning("ledger.provenance_unread", error=str(error))
            return []

    def _record(self, report: RunReport) -> None:
        """Record the run in the ledger; a failure to is kept in the report, not raised,
        so that the run's own result is still reported."""
        outcome = report.outcome
        try:
            self.ledger.record_sync(
                source=self.job.source,
                target=self.job.target,
                steps=outcome.steps if outcome else [],
                written=outcome.result.tags if outcome else [],
                started=report.started,
                finished=report.finished,
                outcome=report.state,
                triggered_by=report.triggered_by,
                run_id=report.run_id,
                referrers=outcome.referrer_states() if outcome else (),
                owed=outcome.provenance.owed if outcome else (),
                settled=outcome.provenance.settled if outcome else (),
            )
            report.recorded = True
        except MirrorError as error:
            report.ledger_error = error


def _state(report: RunReport) -> str:
    outcome = report.outcome
    if outcome is None:
        return FAILED
    if outcome.interrupted:
        return INTERRUPTED
    return COMPLETED if outcome.ok else FAILED

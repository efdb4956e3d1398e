"""The `Service`: one target's worker, its schedules and release signals, and what the
HTTP endpoints ask of them.

Everything that starts a run becomes a `Trigger` queued in the ledger (`submit`); the
worker runs them one at a time. The schedules are APScheduler 3 jobs in an in-memory
job store rebuilt from the configuration at every start (job stores must not be shared
between processes: replicas share the ledger's queue instead), with `max_instances=1`,
`coalesce=True` and the configured misfire grace time.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from mirror import __version__
from mirror.engine.connect import open_store
from mirror.engine.gather import gather
from mirror.engine.job import Job
from mirror.engine.run import COMPLETED, FAILED, Runner, RunReport
from mirror.errors import MirrorError
from mirror.governance.audit import audit
from mirror.governance.releases import ReleaseFeed
from mirror.governance.versions import Version
from mirror.ledger import Ledger
from mirror.ledger.triggers import QueuedTrigger, TriggerQueue
from mirror.logs import get_logger
from mirror.service import status as status_document
from mirror.service.feed import FeedWatcher
from mirror.service.github import GithubPoller, wanted
from mirror.service.hooks import AcrEvent
from mirror.service.metrics import Metrics
from mirror.service.notify import Notifier, Receiver, summary
from mirror.service.polling import poller_client
from mirror.service.triggers import RELEASES, Trigger, at_start, scheduled
from mirror.service.verification import Checked, Verifier
from mirror.service.watch import TagWatcher
from mirror.service.worker import Worker
from mirror.settings.service import Schedule, ServiceSettings, cron_trigger
from mirror.transport.identities import read_secret
from mirror.transport.registry import RegistryClient

READY_CACHE_SECONDS = 10.0


class Secrets:
    """The service's shared secrets, read from the environment once, at start."""

    def __init__(self, settings: ServiceSettings, environ: Mapping[str, str]) -> None:
        hooks = settings.webhooks

        def secret(variable: str | None) -> str | None:
            return None if variable is None else read_secret(variable, environ).get_secret_value()

        self.github = secret(hooks.github.secret_env if hooks.github else None)
        self.acr = secret(hooks.acr.secret_env if hooks.acr else None)
        self.sync = secret(hooks.sync.token_env if hooks.sync else None)
        self.status = secret(settings.status_token_env)
        self.github_api = secret(settings.github_releases.token_env)
        self.notify = [secret(n.secret_env) for n in settings.notify]


class Service:
    """Everything `mirror serve` runs for one target."""

    def __init__(
        self,
        job: Job,
        ledger: Ledger,
        settings: ServiceSettings,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.job = job
        self.ledger = ledger
        self.settings = settings
        self.secrets = Secrets(settings, os.environ if environ is None else environ)
        self.metrics = Metrics()
        self.started = datetime.now(UTC)
        self.runner = Runner(job, ledger)
        self.queue = TriggerQueue(ledger, job.target)
        self.worker = Worker(self.runner, self.queue, self._after_run, self._feed)
        self.notifier = Notifier(
            [
                Receiver(n.url, s.encode() if s else None)
                for n, s in zip(settings.notify, self.secrets.notify, strict=True)
            ]
        )
        self.drift: deque[dict[str, Any]] = deque(maxlen=50)
        self.last_state: str | None = None
        self._client = poller_client()
        self._source = open_store(job.source, job.config)
        self._target = open_store(job.target, job.config)
        self._audits = ThreadPoolExecutor(1, thread_name_prefix="audit")
        self._ready: tuple[float, list[str]] | None = None
        self._ready_lock = threading.Lock()
        self.feed = self._feed_watcher()
        self.github = self._github_poller()
        self.watch = self._tag_watcher()
        self.verifier = self._verifier()
        self.scheduler = self._scheduler()

    # --- the parts -----------------------------------------------------------------

    def _feed_watcher(self) -> FeedWatcher | None:
        feed = self.settings.release_feed
        if not feed.enabled:
            return None
        return FeedWatcher(
            feed.url,
            self._client,
            self.job.repositories,
            self.job.selector,
            self.submit,
            feed.every,
        )

    def _github_poller(self) -> GithubPoller | None:
        github = self.settings.github_releases
        if not github.enabled:
            return None
        return GithubPoller(
            github.api,
            github.repository,
            self.secrets.github_api,
            self._client,
            self.job.repositories,
            lambda: self.job.selector(self._feed()),
            self.submit,
            github.every,
        )

    def _tag_watcher(self) -> TagWatcher | None:
        watch = self.settings.tag_watch
        if not watch.enabled:
            return None
        return TagWatcher(
            self._source,
            self.job.repositories,
            lambda repository: self.job.mirrored_lines(repository, self._feed()),
            self.submit,
            watch.every,
        )

    def _verifier(self) -> Verifier | None:
        verify = self.settings.verify
        if not verify.enabled:
            return None
        return Verifier(self.runner, self.metrics, deep=verify.deep)

    def _scheduler(self) -> Any:
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        settings = self.settings
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(settings.misfire_grace),
            },
            timezone=settings.timezone,
        )
        for number, schedule in enumerate(settings.schedules):
            trigger = self._schedule_trigger(schedule)
            scheduler.add_job(
                self._scheduled, trigger, args=(f"s{number}", schedule), id=f"schedule-{number}"
            )
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        now = datetime.now(UTC)
        for name, poller, every in (  # the feed was read at start; the others look now
            ("feed", self.feed, settings.release_feed.every),
            ("github", self.github, settings.github_releases.every),
            ("watch", self.watch, settings.tag_watch.every),
        ):
            if poller is not None:
                interval = IntervalTrigger(seconds=every, start_date=epoch, timezone=UTC)
                first = now + timedelta(seconds=every) if name == "feed" else now
                scheduler.add_job(poller.poll, interval, id=name, next_run_time=first)
        if self.verifier is not None:  # the first one after a full period: runs come first
            every = settings.verify.every
            interval = IntervalTrigger(seconds=every, start_date=epoch, timezone=UTC)
            first = now + timedelta(seconds=every)
            scheduler.add_job(self.verifier.run, interval, id="verify", next_run_time=first)
        return scheduler

    def _schedule_trigger(self, schedule: Schedule) -> Any:
        from apscheduler.triggers.interval import IntervalTrigger

        if schedule.cron is not None:
            return cron_trigger(schedule.cron, self.settings.timezone, schedule.jitter)
        assert schedule.every is not None
        epoch = datetime(2000, 1, 1, tzinfo=UTC)  # replicas agree on the slots
        return IntervalTrigger(
            seconds=schedule.every, start_date=epoch, jitter=int(schedule.jitter), timezone=UTC
        )

    def _scheduled(self, name: str, schedule: Schedule) -> None:
        """A schedule fired: queue a full sync under the slot's key, so replicas that
        share the schedule queue it once."""
        now = datetime.now(UTC)
        self.submit(scheduled(name, _slot(schedule, self.settings.timezone, now), now))

    def _feed(self) -> ReleaseFeed | None:
        return self.feed.feed if self.feed is not None else None

    # --- life ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and the schedules; the release feed is read first, so that
        the start-up run already follows the lines it lists as current."""
        if self.feed is not None:
            self.feed.poll()
        self.worker.start()
        self.notifier.start()
        if self.settings.run_at_start:
            self.submit(at_start(datetime.now(UTC)))
        self.scheduler.start()
        get_logger().info("service.start", source=self.job.source, target=self.job.target)

    def stop(self, grace: float | None = None) -> bool:
        """Stop the schedules, let the running copy reach a safe point (within `grace`,
        default the configured grace period); True when it did."""
        grace = self.settings.grace_period if grace is None else grace
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        clean = self.worker.stop(grace)
        self.notifier.stop()
        self._audits.shutdown(wait=False, cancel_futures=True)
        for closable in (self._client, self._source, self._target):
            closable.close()
        get_logger().info("service.stop", clean=clean)
        return clean

    # --- triggers and runs ---------------------------------------------------------

    def submit(self, trigger: Trigger) -> bool:
        """Queue `trigger`; False when it was queued before (a duplicate)."""
        queued = self.worker.submit(trigger)
        result = "queued" if queued else "duplicate"
        self.metrics.triggers.labels(trigger.kind, result).inc()
        get_logger().info(
            f"trigger.{result}", kind=trigger.kind, scope=str(trigger.scope), detail=trigger.detail
        )
        return queued

    def mirrors(self, version: Version) -> bool:
        """Whether the policy mirrors `version` in any configured repository."""
        return wanted(version, self.job.repositories, self.job.selector(self._feed()))

    def _after_run(self, report: RunReport, claimed: list[QueuedTrigger]) -> None:
        repositories = report.scope.repositories_of(self.job.repositories)
        self.metrics.count_run(report, repositories)
        if report.state == COMPLETED:
            for trigger in claimed:
                if trigger.kind in RELEASES:
                    waited = (report.finished - trigger.received).total_seconds()
                    self.metrics.latency.labels(trigger.kind).observe(max(waited, 0.0))
        self.last_state = report.state
        self.notifier.send(summary(report, self.job.source, self.job.target))

    # --- ACR webhooks --------------------------------------------------------------

    def repository_of(self, name: str) -> str | None:
        """The configured repository a target repository name stands for (the target's
        repository prefix taken off), or None."""
        prefix = self._target.prefix if isinstance(self._target, RegistryClient) else ""
        if prefix:
            if not name.startswith(f"{prefix}/"):
                return None
            name = name[len(prefix) + 1 :]
        return name if name in self.job.repositories else None

    def audit_later(self, event: AcrEvent, repository: str) -> None:
        self._audits.submit(self._audit, event, repository)

    def _audit(self, event: AcrEvent, repository: str) -> None:
        """Audit the tag an ACR event names; anything found is drift."""
        try:
            if event.action == "delete":
                self._deleted(repository, event.tag)
                return
            states = gather(
                self._source,
                self._target,
                [repository],
                self.job.selector(self._feed()),
                ledger=self.ledger,
                target_name=self.job.target,
                concurrency=4,
            )
        except MirrorError as error:
            get_logger().error(
                "audit.failed", repository=repository, tag=event.tag, error=str(error)
            )
            return
        for violation in audit(states):
            if violation.tag == event.tag:
                self._drift(repository, event.tag, violation.rule, violation.message)

    def _deleted(self, repository: str, tag: str) -> None:
        recorded = self.ledger.recorded(repository, [tag], target=self.job.target).get(tag)
        if recorded is not None and recorded.target is not None:
            self._drift(
                repository, tag, "deleted", "deleted in the target; mirror sync restores it"
            )

    def _drift(self, repository: str, tag: str, kind: str, message: str) -> None:
        self.metrics.drift.labels(kind).inc()
        seen = datetime.now(UTC).isoformat()
        self.drift.appendleft(
            {"seen": seen, "repository": repository, "tag": tag, "kind": kind, "message": message}
        )
        get_logger().warning("drift", repository=repository, tag=tag, kind=kind, message=message)

    # --- what the endpoints show ---------------------------------------------------

    def status(self) -> dict[str, Any]:
        return status_document.document(
            about={
                "version": __version__,
                "source": self.job.source,
                "target": self.job.target,
                "started": self.started.isoformat(),
            },
            ledger=self.ledger,
            target=self.job.target,
            repositories=self.job.repositories,
            current=self.worker.current,
            waiting=self.queue.waiting(),
            drift=list(self.drift),
            verification=last.to_json() if (last := self._last_verification()) else None,
        )

    def _last_verification(self) -> Checked | None:
        return self.verifier.last if self.verifier is not None else None

    def not_ready(self) -> list[str]:
        """Why the service is not ready (empty when it is): the target unreachable, the
        ledger not writable, or the last run failed. Cached for a few seconds."""
        with self._ready_lock:
            now = time.monotonic()
            if self._ready is None or now - self._ready[0] > READY_CACHE_SECONDS:
                self._ready = (now, self._check_ready())
            return self._ready[1]

    def _check_ready(self) -> list[str]:
        problems = []
        try:
            if isinstance(self._target, RegistryClient):
                self._target.ping()
        except MirrorError as error:
            problems.append(f"target: {error}")
        try:
            self.ledger.check_writable()
        except MirrorError as error:
            problems.append(f"ledger: {error}")
        if self.last_state == FAILED:
            problems.append("the last run failed")
        return problems


def _slot(schedule: Schedule, timezone: str, now: datetime) -> datetime:
    """The slot a firing belongs to, without its jitter: the schedule's latest fire time
    at or before `now - jitter`, so that every replica names the same slot."""
    from apscheduler.triggers.interval import IntervalTrigger

    before = now - timedelta(seconds=schedule.jitter + 1)
    if schedule.cron is not None:
        trigger = cron_trigger(schedule.cron, timezone, 0)
    else:
        assert schedule.every is not None
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        trigger = IntervalTrigger(seconds=schedule.every, start_date=epoch, timezone=UTC)
    fire: datetime = trigger.get_next_fire_time(None, before)
    return fire

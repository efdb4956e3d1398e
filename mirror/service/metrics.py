"""The service's Prometheus metrics, in a registry of its own.

Counters follow each run's report: syncs by trigger and outcome, blobs by what the
target needed (uploaded, mounted, already present), bytes copied, tag decisions,
drift events, locks set, provenance records attached or owed; the transport's retries
and `429` answers; the time of the last successful sync per repository; for release
triggers, the time from the release being seen to its tags being mirrored; and the
last verification's findings by kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from mirror.transport.endpoint import RETRIES

if TYPE_CHECKING:
    from mirror.engine.run import RunReport

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class _Transport(Collector):
    """The transport's own counts (see `endpoint.RETRIES`), read when scraped."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "mirror_requests_retried", "Registry requests sent again", value=RETRIES.retries
        )
        yield CounterMetricFamily(
            "mirror_upstream_throttled",
            "Registry answers 429 Too Many Requests",
            value=RETRIES.throttled,
        )


class Metrics:
    """Every metric of one service (a registry of its own, so that two services in one
    process, as in tests, do not share counters)."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.syncs = Counter(
            "mirror_syncs", "Sync runs, by trigger and outcome", ["trigger", "outcome"], registry=r
        )
        self.blobs = Counter(
            "mirror_blobs", "Blobs the target needed, by result", ["result"], registry=r
        )
        self.bytes_copied = Counter("mirror_bytes_copied", "Bytes copied", registry=r)
        self.tags = Counter("mirror_tags", "Tag decisions, by verdict", ["verdict"], registry=r)
        self.tags_written = Counter("mirror_tags_written", "Tags written", registry=r)
        self.drift = Counter("mirror_drift_events", "Drift seen, by kind", ["kind"], registry=r)
        self.locks = Counter("mirror_locks_set", "Specific tags locked", registry=r)
        self.provenance = Counter(
            "mirror_provenance_records",
            "Provenance records attached, or left owed to a later run",
            ["result"],
            registry=r,
        )
        self.triggers = Counter(
            "mirror_triggers",
            "Triggers, by kind and what became of them",
            ["kind", "result"],
            registry=r,
        )
        self.last_success = Gauge(
            "mirror_last_success_timestamp_seconds",
            "When a sync last completed for the repository",
            ["repository"],
            registry=r,
        )
        self.latency = Histogram(
            "mirror_release_latency_seconds",
            "From a release being seen to its tags mirrored",
            ["trigger"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.verify_findings = Gauge(
            "mirror_verify_findings",
            "Findings of the last verification, by kind (0 when all hold)",
            ["kind"],
            registry=r,
        )
        self.verify_tags = Gauge(
            "mirror_verify_tags", "Tags checked by the last verification", registry=r
        )
        self.verify_last = Gauge(
            "mirror_verify_last_timestamp_seconds", "When a verification last ran", registry=r
        )
        r.register(_Transport())

    def count_run(self, report: RunReport, repositories: list[str]) -> None:
        """Add one run's report to the counters."""
        self.syncs.labels(report.triggered_by, report.state).inc()
        outcome = report.outcome
        if outcome is None:
            return
        result = outcome.result
        self.blobs.labels("uploaded").inc(result.uploaded)
        self.blobs.labels("mounted").inc(result.mounted)
        self.blobs.labels("present").inc(result.present)
        self.bytes_copied.inc(result.bytes_copied)
        self.tags_written.inc(len(result.tags))
        for step in outcome.steps:
            self.tags.labels(str(step.action)).inc()
            if step.drift:
                self.drift.labels("rebuilt-upstream").inc()
        self.locks.inc(len(outcome.locked))
        self.provenance.labels("attached").inc(len(outcome.provenance.records))
        self.provenance.labels("owed").inc(len(outcome.provenance.owed))
        if report.state == "completed":
            for repository in repositories:
                self.last_success.labels(repository).set(report.finished.timestamp())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

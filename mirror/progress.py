"""Telling the user what a sync is doing: log lines, or progress bars on a terminal.

`LogReporter` writes one structured line per event (logfmt or JSON, see `logs`) for
cron jobs, CI logs and containers; `progress_bars.ProgressReporter` draws rich
progress bars (imported only when a terminal wants them). Both implement
`copy.CopyReporter`.
"""

from __future__ import annotations

from typing import Protocol

from mirror.copy import BlobOutcome, CopyReporter, describe
from mirror.logs import get_logger
from mirror.plan import BlobCopy, ContentPlan, TagWrite


class Reporter(CopyReporter, Protocol):
    def __enter__(self) -> Reporter: ...

    def __exit__(self, *exc: object) -> None: ...


def reporter(bars: bool) -> Reporter:
    """Progress bars when `bars`, else log lines."""
    if bars:
        from mirror.progress_bars import ProgressReporter

        return ProgressReporter()
    return LogReporter()


class LogReporter:
    """One log line per blob, tag and failure."""

    def __init__(self) -> None:
        self.log = get_logger()

    def __enter__(self) -> LogReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def transfer_started(self, plan: ContentPlan) -> None:
        self.log.info(
            "transfer.start",
            blobs=len(plan.blobs),
            manifests=len(plan.manifests),
            tags=len(plan.tags),
            bytes=plan.bytes_total,
        )

    def bytes_copied(self, count: int) -> None:
        return None

    def blob_done(self, copy: BlobCopy, outcome: BlobOutcome) -> None:
        self.log.info(
            f"blob.{outcome}",
            repository=copy.repository,
            digest=copy.descriptor.digest,
            size=copy.descriptor.size,
            reason=copy.reason,
        )

    def tag_done(self, write: TagWrite) -> None:
        self.log.info(
            "tag.written", repository=write.repository, tag=write.tag, digest=write.manifest.digest
        )

    def failed(self, what: str, error: BaseException) -> None:
        self.log.error("failed", what=what, error=describe(error))

"""What a run tells a job's log: one structured line per blob, tag and failure.

`LogReporter` is the `copy.CopyReporter` for cron jobs, CI logs, containers and the
service (logfmt or JSON, see `mirror.logs`); the command line draws progress bars
instead on a terminal (`cli/progress.py`).
"""

from __future__ import annotations

from mirror.engine.copy import describe
from mirror.engine.plan import BlobCopy, ContentPlan, TagWrite
from mirror.logs import get_logger
from mirror.transport.store import Written


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

    def blob_done(self, copy: BlobCopy, outcome: Written) -> None:
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

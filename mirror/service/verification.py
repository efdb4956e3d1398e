"""`mirror verify` in the service, on its own schedule (`service.verify`).

A verification holds the target's run lock, as a sync does, so it never looks at a tag
half written: when a sync is running it is skipped and tried again at the next slot.
It checks every tag the target holds in the configured repositories; the last result
is in `/status` (and the page), its findings are counted in `/metrics` by kind and
logged one line each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mirror.engine.run import Runner
from mirror.engine.verify import EXIT_CODES, Verification, verify_job
from mirror.errors import MirrorError
from mirror.logs import get_logger
from mirror.service.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Checked:
    """One verification: when it ended, how long it took, what it found."""

    finished: datetime
    seconds: float
    found: Verification

    def to_json(self) -> dict[str, Any]:
        return {
            "finished": self.finished.isoformat(),
            "seconds": round(self.seconds, 2),
            "tags": len(self.found.tags),
            "exit_code": self.found.exit_code,
            "findings": [finding.to_json() for finding in self.found.findings],
        }


class Verifier:
    """Verifies one service's target; `last` is the latest verification that ran."""

    def __init__(self, runner: Runner, metrics: Metrics, *, deep: bool) -> None:
        self.runner = runner
        self.metrics = metrics
        self.deep = deep
        self.last: Checked | None = None

    def run(self) -> Checked | None:
        """Verify now, unless a sync holds the target (None: skipped or failed)."""
        log = get_logger()
        clock = time.monotonic()
        with self.runner.exclusive() as mine:
            if not mine:
                log.info("verify.skipped", reason="a sync is running")
                return None
            try:
                found = verify_job(self.runner.job, self.runner.ledger, deep=self.deep)
            except MirrorError as error:
                get_logger().error("verify.failed", error=str(error))
                return None
        checked = Checked(datetime.now(UTC), time.monotonic() - clock, found)
        self.last = checked
        self._report(checked)
        return checked

    def _report(self, checked: Checked) -> None:
        found = checked.found
        log = get_logger()
        for finding in found.findings:
            log.warning(
                "verify.finding",
                kind=finding.kind,
                repository=finding.repository,
                tag=finding.tag,
                detail=finding.detail,
            )
        log.info(
            "verify.done",
            tags=len(found.tags),
            findings=len(found.findings),
            exit_code=found.exit_code,
            seconds=round(checked.seconds, 2),
        )
        for kind in EXIT_CODES:
            self.metrics.verify_findings.labels(kind).set(
                sum(1 for f in found.findings if f.kind == kind)
            )
        self.metrics.verify_tags.set(len(found.tags))
        self.metrics.verify_last.set(checked.finished.timestamp())

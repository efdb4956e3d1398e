"""How a sync shows its progress: progress bars on a terminal (`bars`), one log line per
event otherwise (the engine's `LogReporter`). Both implement `copy.CopyReporter`."""

from __future__ import annotations

from typing import Protocol

from mirror.engine.copy import CopyReporter


class Reporter(CopyReporter, Protocol):
    def __enter__(self) -> Reporter: ...

    def __exit__(self, *exc: object) -> None: ...


def reporter(bars: bool) -> Reporter:
    """Progress bars when `bars`, else log lines."""
    if bars:
        from mirror.cli.bars import ProgressReporter  # imports rich: only for a terminal

        return ProgressReporter()
    from mirror.engine.report import LogReporter

    return LogReporter()

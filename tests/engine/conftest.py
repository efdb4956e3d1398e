"""Fixtures of the engine tests: the crash suite's tally and its summary line for CI.

`tests/engine/test_crashes.py` adds every kill point it tried to the session's
`CrashTally` (the `crash_tally` fixture); at the end of the session one line says how
many points were tried, with which seed, and how many tags were found over incomplete
content after a kill, or lost after the next sync (both must be 0: the tests fail
otherwise).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import pytest


@dataclass
class CrashTally:
    """What the crash suite did in this session."""

    seed: int | None = None
    points: int = 0
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    tags_checked: int = 0  # tags in a target checked digest by digest right after a kill
    incomplete: int = 0  # of those, tags over content that was not all there
    lost: int = 0  # upstream tags, children or blobs not in the target after the next sync
    leftovers: int = 0  # temporary files a killed sync left in an OCI layout
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"crash: {self.points} kill points (seed {self.seed}), "
            f"{self.incomplete} tags over incomplete content, {self.lost} lost"
        )

    def detail(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.kinds.items()))
        return (
            f"crash: points by kind: {kinds}; {self.tags_checked} tags checked after kills; "
            f"{self.leftovers} temporary files left in layouts; {self.seconds:.1f} s"
        )


CRASH_TALLY = pytest.StashKey[CrashTally]()


@pytest.fixture(scope="session")
def crash_tally(pytestconfig: pytest.Config) -> CrashTally:
    return pytestconfig.stash.setdefault(CRASH_TALLY, CrashTally())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tally = terminalreporter.config.stash.get(CRASH_TALLY, None)
    if tally is None or not tally.points:
        return
    terminalreporter.write_line(tally.line())
    terminalreporter.write_line(tally.detail())

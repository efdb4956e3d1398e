"""Fixtures of the transport tests: the fault suite's tally and its summary line for CI.

`tests/transport/test_faults.py` records each fault kind it injected, how many faults
fired, whether the sync rode them out or failed cleanly, and whether the target then
equalled upstream digest by digest; at the end of the session one line says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class FaultTally:
    """What the fault suite did in this session."""

    kinds: set[str] = field(default_factory=set)
    injected: int = 0  # faults that fired
    ridden_out: int = 0  # syncs that completed despite them
    failed_cleanly: int = 0  # syncs that failed, with every tag in the target complete
    verified: int = 0  # targets compared with upstream digest by digest afterwards
    differing: int = 0  # of those, targets that were not equal to upstream

    def record(self, kind: str, fired: int, *, completed: bool) -> None:
        self.kinds.add(kind)
        self.injected += fired
        if completed:
            self.ridden_out += 1
        else:
            self.failed_cleanly += 1

    def line(self) -> str:
        return (
            f"faults: {len(self.kinds)} kinds injected ({self.injected} faults fired), "
            f"{self.ridden_out} syncs rode them out, {self.failed_cleanly} failed cleanly, "
            f"{self.verified} targets verified digest by digest, {self.differing} differing"
        )


FAULT_TALLY = pytest.StashKey[FaultTally]()


@pytest.fixture(scope="session")
def fault_tally(pytestconfig: pytest.Config) -> FaultTally:
    return pytestconfig.stash.setdefault(FAULT_TALLY, FaultTally())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tally = terminalreporter.config.stash.get(FAULT_TALLY, None)
    if tally is None or not tally.kinds:
        return
    terminalreporter.write_line(tally.line())
    terminalreporter.write_line("faults: kinds: " + ", ".join(sorted(tally.kinds)))

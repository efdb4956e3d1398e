"""Every coverage-guided target of `guided.py`, run by libFuzzer for a fixed number of
inputs from a fixed seed (`MIRROR_FUZZ_RANDOM=1`: a random seed, printed), each in its
own process (libFuzzer ends the process when it is done).

A finding fails the test with the exception and the input, saved as `crash-*` in the
test's directory; replay it with `python -m tests.fuzz.guided TARGET DIR crash-FILE`.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.conftest import guided
from tests.fuzz.guided import TARGETS
from tests.support.commands import ROOT

pytestmark = pytest.mark.slow

RUNS = int(os.environ.get("MIRROR_FUZZ_GUIDED_RUNS", "20000"))
DONE = re.compile(r"^Done (\d+) runs", re.MULTILINE)
COVERAGE = re.compile(r"^#\d+\s+DONE\s+cov: (\d+)", re.MULTILINE)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_finds_nothing(target: str, tmp_path: Path) -> None:
    seed = random.randrange(1, 2**31) if os.environ.get("MIRROR_FUZZ_RANDOM") == "1" else 1
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.guided",
        target,
        str(tmp_path / "corpus"),
        f"-runs={RUNS}",
        f"-seed={seed}",
        "-max_len=8192",
        "-timeout=10",
        f"-artifact_prefix={tmp_path}/",
    ]
    done = subprocess.run(
        command,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    findings = sorted(path.name for path in tmp_path.glob("crash-*"))
    tail = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("INFO:"))
    assert done.returncode == 0, f"seed {seed}: {findings}\n{tail[-3000:]}"
    runs = DONE.search(done.stderr)
    coverage = COVERAGE.search(done.stderr)
    assert runs is not None, tail[-3000:]
    assert int(runs.group(1)) == RUNS
    guided[target] = (RUNS, int(coverage.group(1)) if coverage else 0)

"""Running `mirror` as a user does (a subprocess: its exit code, what it prints), or
in-process through typer's runner, and reading what it said."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[2]


# Root ignores file modes; without these two capabilities it obeys them like any user.
AS_FILE_MODES_SAY = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def run_mirror(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    obey_file_modes: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python -m mirror ARGS` in `cwd`, with the environment plus `env`; with
    `obey_file_modes`, unable to write what the file modes forbid even as root."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    prefix = AS_FILE_MODES_SAY if obey_file_modes and os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "mirror", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def invoke(*args: str) -> Result:
    """`mirror ARGS` in-process (the working directory is the test's)."""
    from mirror.cli.app import COMMAND_MODULES, app

    for name in COMMAND_MODULES:  # as `main` does: importing a module registers its commands
        __import__(f"mirror.cli.{name}")
    return CliRunner().invoke(app, list(args))


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """stderr is exactly one `mirror: error: ...` line, with no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("mirror: error: ")
    return lines[0]


def the_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one `mirror: ...` line among the log lines on stderr, with no traceback."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("mirror: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]

"""The command line as a person meets it: the README's options table agrees with the real
options of `sync` and `plan`, every `--help` fits an 80-column terminal without cutting a
word, and a bad flag is one line. Checked in a real terminal (tmux, 80 columns)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from mirror.cli.app import COMMAND_MODULES, app
from tests.support.commands import ROOT, run_mirror
from tests.support.images import Seeder
from tests.support.registry import Registry

README = ROOT / "README.md"
COMMANDS = [
    ["sync"], ["plan"], ["verify"], ["history"], ["rewrite"], ["lint"], ["doctor"],
    ["serve"], ["tags", "list"], ["tags", "audit"],
]  # fmt: skip
WRITING_ONLY = {"--progress", "--no-progress", "--log-format"}  # sync's, not plan's


def options(*path: str) -> set[str]:
    for name in COMMAND_MODULES:
        __import__(f"mirror.cli.{name}")
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    found = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    return {opt for opt in found if opt.startswith("--")} - {"--help"}


def readme_options() -> set[str]:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `--")]
    cells = [row.split("|")[1] for row in rows]
    return {flag for cell in cells for flag in re.findall(r"--[a-z-]+", cell)}


def test_the_readme_table_is_the_option_set_of_sync() -> None:
    assert readme_options() == options("sync")


def test_plan_takes_the_same_options_but_those_of_writing() -> None:
    assert options("plan") - {"--output"} == options("sync") - WRITING_ONLY


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_fits_80_columns_without_cutting_a_word(tmp_path: Path, command: list[str]) -> None:
    result = run_mirror(*command, "--help", cwd=tmp_path, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert "…" not in result.stdout
    if command == ["rewrite"]:
        assert "'mcr.microsoft.com/*'" in result.stdout  # help is not markup: the * stays


# --- in a real terminal -----------------------------------------------------------------


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[str]:
    """A tmux session, 80x40, in `tmp_path`; its name (`.ci/run` installs tmux)."""
    assert shutil.which("tmux") is not None, "tmux is not installed: apt-get install tmux"
    name = f"mirror-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "40", "-c", str(tmp_path)],
        check=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)


def screen_of(session: str, command: str) -> list[str]:
    """What the terminal shows once `command` has ended (lines, trailing blanks cut)."""
    marker = f"done-{uuid.uuid4().hex[:6]}"
    line = f"clear; PYTHONPATH={shlex.quote(str(ROOT))} {command}; echo {marker} $?"
    subprocess.run(["tmux", "send-keys", "-t", session, line, "Enter"], check=True)
    for _ in range(200):
        shown = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout
        if re.search(rf"^{marker} \d+$", shown, re.M):
            rows = [row.rstrip() for row in shown.rstrip().splitlines()]
            end = next(i for i, row in enumerate(rows) if row.startswith(marker))
            return rows[: end + 1]
        time.sleep(0.05)
    raise AssertionError(f"{command!r} did not end:\n{shown}")


def test_in_a_terminal_a_bad_flag_is_one_line_and_exit_2(terminal: str) -> None:
    mirror = f"{shlex.quote(sys.executable)} -m mirror"
    for command, said in (
        (
            "plan --concurrency 0",
            "mirror: error: --concurrency: must be >= 1 (see 'mirror plan --help')",
        ),
        ("sync --bogus", "mirror: error: No such option: --bogus (see 'mirror sync --help')"),
    ):
        shown = screen_of(terminal, f"{mirror} {command} 2>&1")
        output = [row for row in shown if row and not row.startswith("done-")]
        assert output == [said], shown
        assert shown[-1].endswith(" 2"), shown


def test_in_a_terminal_every_help_fits_the_screen_width(terminal: str) -> None:
    mirror = f"{shlex.quote(sys.executable)} -m mirror"
    for command in COMMANDS:
        shown = screen_of(terminal, f"{mirror} {' '.join(command)} --help | head -30")
        assert all(len(row) <= 80 for row in shown)
        assert "…" not in "\n".join(shown), shown
        assert shown[0].startswith(f"Usage: mirror {' '.join(command)}"), shown


def test_version_names_mirror_its_policy_and_its_release_feed(tmp_path: Path) -> None:
    from mirror import __version__

    result = run_mirror("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"mirror {__version__}",
        "policy iotedge-runtime (format 1)",
        "release feed: the shipped copy, newest edgeAgent 1.6.1",
    ]


def test_completion_installs_the_typer_way(tmp_path: Path) -> None:
    shown = run_mirror("--show-completion", "bash", cwd=tmp_path, env={"SHELL": "/bin/bash"})
    assert shown.returncode == 0, shown.stderr
    assert "_MIRROR_COMPLETE" in shown.stdout


def test_quiet_keeps_warnings_and_errors_only(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seeder.push_release("azureiotedge-agent", "1.5.3")
    common = ("--source", upstream.url, "--target", target.url, "--repo", "azureiotedge-agent")
    quiet = run_mirror("-q", "sync", *common, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""  # a run that went well says nothing
    loud = run_mirror("sync", *common, cwd=tmp_path)
    assert "level=info event=sync.done" in loud.stderr
    assert "level=debug" not in loud.stderr
    verbose = run_mirror("-v", "sync", *common, cwd=tmp_path)
    assert "level=debug event=request " in verbose.stderr  # every request, with its answer
    both = run_mirror("-q", "-v", "plan", cwd=tmp_path)
    assert both.returncode == 2
    assert both.stderr.strip() == "mirror: error: --quiet and --verbose do not go together"

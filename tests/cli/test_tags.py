"""`mirror tags audit`, run as a user runs it: a subprocess against real registries, its
exit code, what it prints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.ledger_runs import AGENT, seed, state_in, sync_args
from tests.support.commands import run_mirror
from tests.support.images import Seeder
from tests.support.registry import Registry

pytestmark = pytest.mark.registry


def audit_args(upstream: Registry, target: Registry, ledger: Path, *extra: str) -> list[str]:
    return [
        "tags",
        "audit",
        "--source",
        upstream.url,
        "--target",
        target.url,
        "--repo",
        AGENT,
        "--ledger",
        str(ledger),
        *extra,
    ]


def audit_json(result: subprocess.CompletedProcess[str]) -> list[tuple[Any, ...]]:
    document = json.loads(result.stdout)
    return [(f["rule"], f["tag"], f["severity"]) for f in document["findings"]]


def test_tags_audit_against_real_registries(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    seed(seeder)
    seeder.tag(AGENT, "1.5.3", "latest")
    assert (
        run_mirror(
            *sync_args(upstream, target, ledger), cwd=tmp_path, env=state_in(tmp_path)
        ).returncode
        == 0
    )

    clean = run_mirror(*audit_args(upstream, target, ledger), cwd=tmp_path, env=state_in(tmp_path))
    assert clean.returncode == 0, clean.stderr
    assert "no findings: 3 tags in 1 repository follow the policy" in clean.stdout

    seeder.push_release(AGENT, "1.5.4")
    seeder.tag(AGENT, "1.5.4", "1.5")
    behind = run_mirror(*audit_args(upstream, target, ledger), cwd=tmp_path, env=state_in(tmp_path))
    strict = run_mirror(
        *audit_args(upstream, target, ledger, "--fail-on", "warning"),
        cwd=tmp_path,
        env=state_in(tmp_path),
    )
    assert behind.returncode == 0
    assert strict.returncode == 1
    assert "warning  azureiotedge-agent:1.5  rolling-behind" in behind.stdout
    assert "0 errors, 1 warning in 3 tags in 1 repository" in behind.stdout

    target_seeder.push_release(AGENT, "latest", salt="by hand")
    target_seeder.push_release(AGENT, "1.5.2", salt="tampered")
    failing = run_mirror(
        *audit_args(upstream, target, ledger, "-o", "json"), cwd=tmp_path, env=state_in(tmp_path)
    )
    assert failing.returncode == 1
    assert audit_json(failing) == [
        ("tampered", "1.5.2", "error"),
        ("rolling-behind", "1.5", "warning"),
        ("convention", "latest", "error"),
    ]
    assert json.loads(failing.stdout)["errors"] == 2

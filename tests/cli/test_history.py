"""`mirror sync` recording into the ledger, and `mirror history`, run as a user runs
them: a subprocess against real registries, its exit code, what it prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirror.ledger import Ledger
from tests.cli.ledger_runs import AGENT, seed, state_in, sync_args
from tests.support.commands import run_mirror, the_error_line
from tests.support.images import Seeder
from tests.support.registry import Registry

pytestmark = pytest.mark.registry


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_help_explains_history_audit_and_the_ledger_option(tmp_path: Path) -> None:
    top = run_mirror("--help", cwd=tmp_path, env=state_in(tmp_path))
    assert "history" in top.stdout
    assert "tags" in top.stdout
    assert "audit" in run_mirror("tags", "--help", cwd=tmp_path, env=state_in(tmp_path)).stdout
    history = run_mirror("history", "--help", cwd=tmp_path, env=state_in(tmp_path)).stdout
    for option in ("--at", "--ledger", "--output", "--target", "REPO[:TAG]"):
        assert option in history
    audit = run_mirror("tags", "audit", "--help", cwd=tmp_path, env=state_in(tmp_path)).stdout
    for option in ("--source", "--target", "--repo", "--output", "--fail-on", "convention"):
        assert option in audit
    assert "--ledger" in run_mirror("sync", "--help", cwd=tmp_path, env=state_in(tmp_path)).stdout


def test_a_rebuild_upstream_is_held_recorded_as_drift_and_shown_by_history(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    old = seed(seeder)["1.5.3"]
    args = sync_args(upstream, target, ledger, "--all-tags")
    first = run_mirror(*args, cwd=tmp_path, env=state_in(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "event=ledger.recorded" in first.stderr

    rebuilt = seeder.push_release(AGENT, "1.5.3", salt="rebuilt").digest
    second = run_mirror(*args, cwd=tmp_path, env=state_in(tmp_path))

    assert second.returncode == 4, second.stderr
    assert target_seeder.digest_of(AGENT, "1.5.3") == old
    with Ledger.open(str(ledger)) as book:
        events = book.drift_events(AGENT)
    assert [(e.tag, e.target_digest, e.source_digest) for e in events] == [("1.5.3", old, rebuilt)]

    shown = run_mirror(
        "history",
        f"{AGENT}:1.5.3",
        "--ledger",
        str(ledger),
        "-o",
        "json",
        cwd=tmp_path,
        env=state_in(tmp_path),
    )
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    sides = [(p["side"], p["digest"]) for p in document["periods"]]
    assert sides == [("source", old), ("source", rebuilt), ("target", old)]
    assert [(d["tag"], d["source_digest"]) for d in document["drift"]] == [("1.5.3", rebuilt)]
    text = run_mirror(
        "history", f"{AGENT}:1.5.3", "--ledger", str(ledger), cwd=tmp_path, env=state_in(tmp_path)
    ).stdout
    assert "drift" in text
    assert f"upstream sha256:{rebuilt[7:19]}" in text


def test_history_at_a_date_names_the_digest_and_the_version(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    digests = seed(seeder)
    assert (
        run_mirror(
            *sync_args(upstream, target, ledger, "--all-tags"), cwd=tmp_path, env=state_in(tmp_path)
        ).returncode
        == 0
    )

    text = run_mirror(
        "history",
        f"{AGENT}:1.5",
        "--at",
        today(),
        "--ledger",
        str(ledger),
        cwd=tmp_path,
        env=state_in(tmp_path),
    )
    as_json = run_mirror(
        "history",
        f"{AGENT}:1.5",
        "--at",
        today(),
        "--ledger",
        str(ledger),
        "-o",
        "json",
        cwd=tmp_path,
        env=state_in(tmp_path),
    )
    every_tag = run_mirror(
        "history",
        AGENT,
        "--at",
        today(),
        "--ledger",
        str(ledger),
        cwd=tmp_path,
        env=state_in(tmp_path),
    )

    assert text.returncode == 0, text.stderr
    assert f"target  {digests['1.5.3']} (1.5.3)" in text.stdout
    answer = json.loads(as_json.stdout)
    assert (answer["target_digest"], answer["specific"]) == (digests["1.5.3"], "1.5.3")
    assert answer["mirrored"] is not None
    headers = [line for line in every_tag.stdout.splitlines() if not line.startswith(" ")]
    assert [h.split(" at ")[0] for h in headers] == [
        f"{AGENT}:{t}" for t in ("1.5.2", "1.5.3", "1.5")
    ]


def test_history_before_anything_was_recorded_exits_1(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    seed(seeder)
    assert (
        run_mirror(
            *sync_args(upstream, target, ledger), cwd=tmp_path, env=state_in(tmp_path)
        ).returncode
        == 0
    )
    result = run_mirror(
        "history",
        f"{AGENT}:1.5",
        "--at",
        "2001-01-01",
        "--ledger",
        str(ledger),
        cwd=tmp_path,
        env=state_in(tmp_path),
    )
    assert result.returncode == 1
    assert "no record of azureiotedge-agent:1.5" in the_error_line(result)
    unknown = run_mirror(
        "history", "azureiotedge-hub", "--ledger", str(ledger), cwd=tmp_path, env=state_in(tmp_path)
    )
    assert unknown.returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", f"{AGENT}:1.5", "--at", "last tuesday"], "--at: not an ISO date"),
        (["history", "Not A Repo:1.5"], "repository"),
    ],
)
def test_history_rejects_bad_input_with_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_mirror(*args, cwd=tmp_path, env=state_in(tmp_path))
    assert result.returncode == 2
    assert message in the_error_line(result)


def test_the_ledger_defaults_to_the_config_then_the_state_directory(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seed(seeder)
    base = ["sync", "--source", upstream.url, "--target", target.url, "--repo", AGENT]
    assert run_mirror(*base, cwd=tmp_path, env=state_in(tmp_path)).returncode == 0
    assert (tmp_path / "state" / "mirror" / "ledger.sqlite").is_file()

    configured = tmp_path / "configured.sqlite"
    (tmp_path / "mirror.yaml").write_text(f"version: 1\nledger: {configured}\n")
    assert run_mirror(*base, cwd=tmp_path, env=state_in(tmp_path)).returncode == 0
    shown = run_mirror(
        "history", f"{AGENT}:1.5", "-o", "json", cwd=tmp_path, env=state_in(tmp_path)
    )
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["periods"]
    with Ledger.open(str(configured)) as book:
        assert book.tags(AGENT) == ["1.5.2", "1.5.3", "1.5"]


def test_a_ledger_that_cannot_be_written_fails_the_run_but_keeps_its_result(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder
) -> None:
    seed(seeder)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = run_mirror(
        *sync_args(upstream, target, blocker / "ledger.sqlite"),
        cwd=tmp_path,
        env=state_in(tmp_path),
    )
    assert result.returncode == 1
    line = the_error_line(result)
    assert line.startswith("mirror: error: ledger ")
    assert "recording the run failed" in line
    assert "event=sync.done" in result.stderr
    assert "tags_written=3" in result.stderr
    assert target_seeder.tags(AGENT) == ["1.5", "1.5.2", "1.5.3"]


def test_reading_commands_read_a_ledger_they_cannot_write(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seed(seeder)
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    ledger = shelf / "ledger.sqlite"
    env = state_in(tmp_path)
    assert run_mirror(*sync_args(upstream, target, ledger), cwd=tmp_path, env=env).returncode == 0
    before = {path.name: path.read_bytes() for path in shelf.iterdir()}
    ledger.chmod(0o444)
    shelf.chmod(0o555)
    try:
        history = run_mirror(
            "history",
            f"{AGENT}:1.5",
            "-o",
            "json",
            "--ledger",
            str(ledger),
            cwd=tmp_path,
            env=env,
            obey_file_modes=True,
        )
        audit = run_mirror(
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
            cwd=tmp_path,
            env=env,
            obey_file_modes=True,
        )
        sync = run_mirror(
            *sync_args(upstream, target, ledger), cwd=tmp_path, env=env, obey_file_modes=True
        )
    finally:
        shelf.chmod(0o755)
        ledger.chmod(0o644)
    assert sync.returncode == 1
    assert the_error_line(sync).startswith(f"mirror: error: ledger {ledger}: recording the run")
    assert history.returncode == 0, history.stderr
    assert json.loads(history.stdout)["periods"]
    assert audit.returncode == 0, audit.stderr
    assert {path.name: path.read_bytes() for path in shelf.iterdir()} == before

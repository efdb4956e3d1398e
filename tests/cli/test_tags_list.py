"""`mirror tags list`: what the mirror holds, from the ledger and (`--live`) the
registry, in IoT Edge version order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.commands import run_mirror
from tests.support.faults import Fault, FaultProxy
from tests.support.images import Seeder
from tests.support.registry import Registry

AGENT = "azureiotedge-agent"


def listing(target: Registry | FaultProxy, cwd: Path, *args: str) -> list[dict[str, Any]]:
    result = run_mirror("tags", "list", AGENT, "--target", target.url, "-o", "json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def test_the_mirror_listed_in_version_order_then_checked_live(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder
) -> None:
    for version in ("1.5.2", "1.5.10"):
        seeder.push_release(AGENT, version)
    seeder.tag(AGENT, "1.5.10", "1.5")
    synced = run_mirror(
        "sync", "--source", upstream.url, "--target", target.url, "--repo", AGENT, cwd=tmp_path
    )
    assert synced.returncode == 0, synced.stderr

    recorded = listing(target, tmp_path)
    assert [(e["tag"], e["kind"], e["state"]) for e in recorded] == [
        ("1.5.2", "specific", "mirrored"),
        ("1.5.10", "specific", "mirrored"),  # a version, not a string: after 1.5.2
        ("1.5", "rolling", "mirrored"),
    ]
    assert all(e["digest"] == seeder.digest_of(AGENT, e["tag"]) for e in recorded)
    assert all(e["mirrored"] and e["platforms"] is None for e in recorded)

    # Someone moves 1.5.2 in the target and pushes a tag mirror never wrote.
    target_seeder.push_release(AGENT, "1.5.2", salt="by hand")
    target_seeder.push_release(AGENT, "1.5.7")
    live = {e["tag"]: e for e in listing(target, tmp_path, "--live")}
    assert list(live) == ["1.5.2", "1.5.7", "1.5.10", "1.5"]
    assert (live["1.5.2"]["state"], live["1.5.7"]["state"]) == ("moved", "unrecorded")
    assert live["1.5.2"]["digest"] == target_seeder.digest_of(AGENT, "1.5.2")
    assert live["1.5.10"]["platforms"] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert live["1.5"]["locked"] is None  # no locks outside ACR

    text = run_mirror("tags", "list", "--target", target.url, "--live", cwd=tmp_path)
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["TAG", "KIND", "STATE", "DIGEST", "MIRRORED", "PLATFORMS", "LOCK"]
    assert lines[-1] == "4 tags in 1 repository"


def test_an_empty_ledger_says_what_to_do(tmp_path: Path, target: Registry) -> None:
    result = run_mirror("tags", "list", "--target", target.url, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("nothing recorded: run mirror sync first")


def test_a_rebuild_kept_apart_is_listed_as_derived() -> None:
    from mirror.engine.inventory import kind_of

    assert kind_of("1.5.3-rebuild-20260901", "specific") == "derived"
    assert kind_of("1.5.3") == "specific"
    assert kind_of("1.5") == "rolling"
    assert kind_of("latest") == "other"


def test_a_tag_deleted_while_being_listed_shows_as_missing(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seeder.push_release(AGENT, "1.5.2")
    proxy = FaultProxy(target.url).start()
    try:
        synced = run_mirror(
            "sync", "--source", upstream.url, "--target", proxy.url, "--repo", AGENT, cwd=tmp_path
        )
        assert synced.returncode == 0, synced.stderr
        # listed by the registry, gone by the time its manifest is asked for
        proxy.add(Fault(r"/manifests/1\.5\.2$", status=404, body=b'{"errors":[]}'))
        live = listing(proxy, tmp_path, "--live")
    finally:
        proxy.stop()
    assert [(e["tag"], e["state"], e["platforms"]) for e in live] == [("1.5.2", "missing", [])]

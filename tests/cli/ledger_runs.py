"""What the ledger commands' tests share: a sync of one repository between two real
registries into a named ledger, its state kept in the test's directory."""

from __future__ import annotations

from pathlib import Path

from tests.support.images import Seeder
from tests.support.registry import Registry

AGENT = "azureiotedge-agent"


def state_in(directory: Path) -> dict[str, str]:
    """Keep the run's state (its default ledger) in `directory`/state."""
    return {"XDG_STATE_HOME": str(directory / "state")}


def sync_args(upstream: Registry, target: Registry, ledger: Path, *extra: str) -> list[str]:
    return [
        "sync",
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


def seed(seeder: Seeder) -> dict[str, str]:
    digests = {
        version: seeder.push_release(AGENT, version).digest for version in ("1.5.2", "1.5.3")
    }
    seeder.tag(AGENT, "1.5.3", "1.5")
    return digests

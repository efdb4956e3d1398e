"""End to end: `mirror sync` into a real registry, then `mirror rewrite` against it.

The references a rewrite writes are checked with plain HTTP requests (the test
seeder), not with mirror's own client: they must resolve in the target, and the
index they name must have every platform, each image present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import mirror.cli.lint
import mirror.cli.rewrite  # noqa: F401
from mirror.cli.app import app
from tests.deployment.helpers import deployment
from tests.support.commands import run_mirror
from tests.support.images import DOCKER_LIST, OCI_INDEX, Seeder
from tests.support.registry import Registry

pytestmark = pytest.mark.registry

REPOS = ("azureiotedge-agent", "azureiotedge-hub")
PLATFORMS = {"linux/amd64", "linux/arm64", "linux/arm/v7"}
MANIFEST = deployment(
    {
        "edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5",
        "edgeHub": "mcr.microsoft.com/azureiotedge-hub:1.5",
        "sensor": "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5",
        "nginx": "docker.io/library/nginx:1.27",
    }
)


def rewrite(*args: str) -> Result:
    """`mirror rewrite ARGS` in-process (the working directory is the test's)."""
    return CliRunner().invoke(app, ["rewrite", *args])


def images(path: Path) -> dict[str, str]:
    desired = json.loads(path.read_text())["modulesContent"]["$edgeAgent"]["properties.desired"]
    found = {name: m["settings"]["image"] for name, m in desired["systemModules"].items()}
    found.update({name: m["settings"]["image"] for name, m in desired["modules"].items()})
    return found


@pytest.fixture
def mirrored(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Upstream has agent and hub 1.5.0 and 1.5.1 (1.5 -> 1.5.1, an OCI index with
    attestations) and the sensor 1.5.0 (1.5 -> 1.5.0); `mirror sync` copies them to
    `<target>/edge`. Returns a working directory holding d.json."""
    for repository in REPOS:
        seeder.push_release(repository, "1.5.0")
        seeder.push_release(repository, "1.5.1", oci=True, attestation=True)
        seeder.tag(repository, "1.5.1", "1.5")
    seeder.push_release("azureiotedge-simulated-temperature-sensor", "1.5.0")
    seeder.tag("azureiotedge-simulated-temperature-sensor", "1.5.0", "1.5")
    repositories = [*REPOS, "azureiotedge-simulated-temperature-sensor"]
    synced = run_mirror(
        "sync",
        "--source",
        upstream.url,
        "--target",
        f"{target.url}/edge",
        *(option for repository in repositories for option in ("--repo", repository)),
        "--all-tags",
        "--no-progress",
        cwd=tmp_path,
    )
    assert synced.returncode == 0, synced.stderr
    (tmp_path / "d.json").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_pullable(seeder: Seeder, repository: str, digest: str) -> None:
    """The index `digest` is in `repository` with an image for every fleet platform."""
    accept = ", ".join([OCI_INDEX, DOCKER_LIST])
    response = seeder.client.get(f"/v2/{repository}/manifests/{digest}", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == digest
    platforms = {}
    for entry in response.json()["manifests"]:
        p = entry["platform"]
        name = "/".join(part for part in (p["os"], p["architecture"], p.get("variant")) if part)
        platforms[name] = entry["digest"]
    assert set(platforms) >= PLATFORMS
    for name in PLATFORMS:
        assert seeder.has_manifest(repository, platforms[name]), name


def test_sync_then_pin_digest_resolves_in_the_mirror(
    mirrored: Path, target: Registry, seeder: Seeder, target_seeder: Seeder
) -> None:
    registry = f"{target.url}/edge"
    pin = ("--registry", registry, "--pin", "digest")
    done = run_mirror("rewrite", "d.json", *pin, "--in-place", cwd=mirrored)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"d.json: rewrote 3 images to {target.address}/edge and the registryCredentials entry\n"
    )
    written = images(mirrored / "d.json")
    sensor = "azureiotedge-simulated-temperature-sensor"
    expected = {
        "edgeAgent": (REPOS[0], seeder.digest_of(REPOS[0], "1.5")),
        "edgeHub": (REPOS[1], seeder.digest_of(REPOS[1], "1.5")),
        "sensor": (sensor, seeder.digest_of(sensor, "1.5")),
    }
    for module, (repository, digest) in expected.items():
        assert written[module] == f"{target.address}/edge/{repository}@{digest}"
        assert_pullable(target_seeder, f"edge/{repository}", str(digest))
    assert written["nginx"] == "docker.io/library/nginx:1.27"
    desired = json.loads((mirrored / "d.json").read_text())["modulesContent"]["$edgeAgent"]
    entries = desired["properties.desired"]["runtime"]["settings"]["registryCredentials"]
    assert entries == {
        "127-0-0-1": {
            "username": "$MIRROR_PULL_USERNAME",
            "password": "$MIRROR_PULL_PASSWORD",
            "address": target.address,
        }
    }

    again = run_mirror("rewrite", "d.json", *pin, "--check", cwd=mirrored)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""


def test_sync_then_pin_specific(mirrored: Path, target: Registry, target_seeder: Seeder) -> None:
    registry = f"{target.url}/edge"
    done = rewrite("d.json", "--registry", registry, "--pin", "specific", "-o", "out.json")
    assert done.exit_code == 0, done.stderr
    assert images(mirrored / "out.json") == {
        "edgeAgent": f"{target.address}/edge/azureiotedge-agent:1.5.1",
        "edgeHub": f"{target.address}/edge/azureiotedge-hub:1.5.1",
        "sensor": f"{target.address}/edge/azureiotedge-simulated-temperature-sensor:1.5.0",
        "nginx": "docker.io/library/nginx:1.27",
    }

    # A manifest rewritten earlier with tags is pinned the same way.
    assert rewrite("d.json", "--registry", registry, "--in-place").exit_code == 0
    done = rewrite("d.json", "--registry", registry, "--pin", "specific", "-o", "again.json")
    assert done.exit_code == 0, done.stderr
    assert images(mirrored / "again.json") == images(mirrored / "out.json")

    # A rolling tag that no specific tag in the mirror matches cannot be pinned.
    target_seeder.push_release("edge/azureiotedge-diagnostics", "1.2", version="1.2.9")
    (mirrored / "diagnostics.json").write_text(
        deployment(
            {
                "edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5",
                "edgeHub": "mcr.microsoft.com/azureiotedge-hub:1.5",
                "diagnostics": "mcr.microsoft.com/azureiotedge-diagnostics:1.2",
            }
        )
    )
    done = rewrite(
        "diagnostics.json", "--registry", registry, "--pin", "specific", "-o", "diag.out.json"
    )
    assert done.exit_code == 1
    assert done.stderr.splitlines() == [
        "mirror: error: diagnostics.json:29: no specific version is known for"
        f" mcr.microsoft.com/azureiotedge-diagnostics:1.2 in {target.address}/edge",
        "mirror: diagnostics.json: not rewritten",
    ]
    assert not (mirrored / "diag.out.json").exists()


def test_offline_pins_come_from_the_ledger_of_the_sync(
    mirrored: Path, target: Registry, seeder: Seeder
) -> None:
    """The sync recorded what it wrote; offline, rewrite pins from that record alone."""
    registry = f"{target.url}/edge"
    online = rewrite("d.json", "--registry", registry, "--pin", "specific", "-o", "on.json")
    offline = rewrite(
        "d.json", "--registry", registry, "--pin", "specific", "--offline", "-o", "off.json"
    )
    assert online.exit_code == 0, online.stderr
    assert offline.exit_code == 0, offline.stderr
    assert images(mirrored / "off.json") == images(mirrored / "on.json")

    digests = rewrite(
        "d.json", "--registry", registry, "--pin", "digest", "--offline", "-o", "dig.json"
    )
    assert digests.exit_code == 0, digests.stderr
    agent = images(mirrored / "dig.json")["edgeAgent"]
    assert agent == f"{target.address}/edge/{REPOS[0]}@{seeder.digest_of(REPOS[0], '1.5')}"


def test_missing_platform_or_image_stops_the_write(
    mirrored: Path, target: Registry, target_seeder: Seeder
) -> None:
    # The mirror's hub 1.5 is replaced by a build without linux/arm/v7.
    target_seeder.push_release(
        "edge/azureiotedge-hub",
        "1.5",
        version="1.5.2",
        platforms=(("linux", "amd64", None), ("linux", "arm64", None)),
    )
    (mirrored / "e.json").write_text(
        deployment(
            {
                "edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5",
                "edgeHub": "mcr.microsoft.com/azureiotedge-hub:1.5",
                "proxy": "mcr.microsoft.com/azureiotedge-api-proxy:1.1",
            }
        )
    )
    registry = f"{target.url}/edge"
    done = rewrite("e.json", "--registry", registry, "--in-place")
    assert done.exit_code == 1
    hub = f"{target.address}/edge/azureiotedge-hub:1.5"
    proxy = f"{target.address}/edge/azureiotedge-api-proxy:1.1"
    assert done.stderr.splitlines() == [
        f"mirror: error: e.json:22: {hub}: missing platform linux/arm/v7 in the target"
        " (it has linux/amd64, linux/arm64)",
        f"mirror: error: e.json:29: {proxy}: not in the target: mirror it first",
        "mirror: e.json: not rewritten",
    ]
    assert "registry.example" not in (mirrored / "e.json").read_text()
    assert images(mirrored / "e.json")["edgeHub"] == "mcr.microsoft.com/azureiotedge-hub:1.5"

    hub_only = ("--mirrored", "mcr.microsoft.com/azureiotedge-hub")
    no_arm32 = ("--platform", "linux/amd64", "--platform", "linux/arm64")
    fleet_without_arm32 = rewrite("e.json", "--registry", registry, *no_arm32, *hub_only)
    assert fleet_without_arm32.exit_code == 0, fleet_without_arm32.stderr
    assert f'"image": "{hub}"' in fleet_without_arm32.stdout

    offline = rewrite("e.json", "--registry", registry, "--offline")
    assert offline.exit_code == 0, offline.stderr
    assert f'"image": "{proxy}"' in offline.stdout


def test_a_registry_is_found_in_the_ledger_however_it_is_spelled(
    mirrored: Path, target: Registry, seeder: Seeder
) -> None:
    """The sync wrote to `http://127.0.0.1:PORT/edge`; offline, a bare address (and
    other spellings) finds the same records."""
    agent = f"{REPOS[0]}@{seeder.digest_of(REPOS[0], '1.5')}"
    for spelling in (f"{target.address}/edge", f"HTTP://{target.address}/edge/"):
        digests = rewrite(
            "d.json", "--registry", spelling, "--pin", "digest", "--offline", "-o", "dig.json"
        )
        assert digests.exit_code == 0, (spelling, digests.stderr)
        assert images(mirrored / "dig.json")["edgeAgent"].endswith(agent)


def test_a_plain_http_registry_addressed_without_http_gets_a_hint(
    mirrored: Path, target: Registry
) -> None:
    result = run_mirror(
        "rewrite", "d.json", "--registry", f"{target.address}/edge", "--pin", "digest", cwd=mirrored
    )
    assert result.returncode != 0
    assert f"is it plain http? write http://{target.address}" in result.stderr, result.stderr

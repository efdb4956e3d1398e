"""`mirror sync --from-manifests`: mirror exactly what the corpus of deployment
manifests pulls from mcr.microsoft.com (a real `docker-registry` standing in for it),
then `mirror rewrite` points every manifest at the mirror."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mirror.engine.job import Job
from tests.support.commands import run_mirror
from tests.support.images import Seeder
from tests.support.registry import Registry

DATA = Path(__file__).parents[1] / "data" / "deployments"
AGENT, HUB = "azureiotedge-agent", "azureiotedge-hub"
SENSOR = "azureiotedge-simulated-temperature-sensor"
COLLECTOR = "azureiotedge-metrics-collector"
OSS_REGISTRY = "oss/v2/docker/registry"
VALUES = ("--set", "EDGE_RUNTIME_VERSION=1.5")

# What upstream holds: (repository, specific tags, {rolling tag: the specific it names}).
UPSTREAM = [
    (
        AGENT,
        ["1.0.8", "1.1.13", "1.2.0", "1.4.20", "1.5.3"],
        {"1.0": "1.0.8", "1.1": "1.1.13", "1.4": "1.4.20", "1.5": "1.5.3"},
    ),
    (
        HUB,
        ["1.0.8", "1.1.13", "1.2.0", "1.4.20", "1.5.3"],
        {"1.0": "1.0.8", "1.1": "1.1.13", "1.4": "1.4.20", "1.5": "1.5.3"},
    ),
    (SENSOR, ["1.0.5", "1.4.6", "1.5.3"], {"1.0": "1.0.5", "1.5": "1.5.3"}),
    (COLLECTOR, ["1.0.0", "1.3.1"], {}),
    (OSS_REGISTRY, ["v3.0.0", "v2.8.3"], {}),
]
# What the manifests name (with EDGE_RUNTIME_VERSION=1.5), with the newest specific tag
# of each rolling tag's line (what it names: 1.1 -> 1.1.13) and, for edgeAgent and
# edgeHub, what the default policy adds (the 1.5 line of the release feed: 1.5.3).
NAMED = {
    AGENT: ["1.0", "1.0.8", "1.1", "1.4", "1.5"],
    HUB: ["1.0", "1.0.8", "1.1", "1.4", "1.5"],
    SENSOR: ["1.0", "1.4.6"],
    COLLECTOR: ["1.0.0"],
    OSS_REGISTRY: ["v3.0.0"],
}
EXPECTED = {
    AGENT: ["1.0", "1.0.8", "1.1", "1.1.13", "1.4", "1.4.20", "1.5", "1.5.3"],
    HUB: ["1.0", "1.0.8", "1.1", "1.1.13", "1.4", "1.4.20", "1.5", "1.5.3"],
    SENSOR: ["1.0", "1.0.5", "1.4.6"],
    COLLECTOR: ["1.0.0"],
    OSS_REGISTRY: ["v3.0.0"],
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    copied = tmp_path / "deployments"
    copied.mkdir()
    for manifest in DATA.glob("*.json"):
        shutil.copy(manifest, copied)
    return copied


def seed(seeder: Seeder) -> None:
    for repository, specific, rolling in UPSTREAM:
        for tag in specific:
            seeder.push_release(repository, tag, layer_size=256, base_size=512)
        for tag, names in rolling.items():
            seeder.tag(repository, names, tag)


def mirror(
    command: str, upstream: Registry, target: Registry, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_mirror(
        command, "--source", upstream.url, "--target", target.url, *args, cwd=cwd, timeout=300
    )


def writes(registry: Registry, mark: int) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in registry.requests_since(mark)
        if r.method in ("PUT", "POST", "PATCH", "DELETE")
    ]


def test_sync_from_the_corpus_copies_exactly_what_the_manifests_pull(
    tmp_path: Path,
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    corpus: Path,
) -> None:
    seed(seeder)
    planned = mirror(
        "plan", upstream, target, tmp_path, "--from-manifests", str(corpus), *VALUES, "-o", "json"
    )
    assert planned.returncode == 3, planned.stderr
    entries = json.loads(planned.stdout)
    named = [e for e in entries if e["action"] == "named"]
    assert {(e["repository"], e["reference"], e["step"]) for e in named} == {
        (repository, tag, "create") for repository, tags in NAMED.items() for tag in tags
    }
    creates = {(e["repository"], e["tag"]) for e in entries if e["action"] == "create"}
    assert creates == {(r, tag) for r, tags in EXPECTED.items() for tag in tags}
    unresolved = {e["image"] for e in entries if e["action"] == "unresolved"}
    assert unresolved == {
        f"<Container_Registry>/microsoft/{name}:<Build.BuildNumber>-linux-<Architecture>"
        for name in (AGENT, HUB, "azureiotedge-api-proxy")
    }

    synced = mirror("sync", upstream, target, tmp_path, "--from-manifests", str(corpus), *VALUES)
    assert synced.returncode == 0, synced.stderr
    assert "event=deployment.unresolved" in synced.stderr
    for repository, tags in EXPECTED.items():
        assert target_seeder.tags(repository) == sorted(tags), repository
        for tag in tags:
            assert target_seeder.digest_of(repository, tag) == seeder.digest_of(repository, tag)

    mark = len(target.requests())
    again = mirror("sync", upstream, target, tmp_path, "--from-manifests", str(corpus), *VALUES)
    assert again.returncode == 0, again.stderr
    assert writes(target, mark) == []

    # Every manifest then points at the mirror: no image left on the public registry.
    for manifest in sorted(corpus.glob("*.json")):
        rewritten = run_mirror(
            "rewrite",
            str(manifest),
            *("--registry", target.url, "--mirrored", "mcr.microsoft.com/*", "--in-place"),
            cwd=tmp_path,
        )
        assert rewritten.returncode == 0, rewritten.stderr
        linted = run_mirror("lint", str(manifest), "--format", "json", cwd=tmp_path)
        rules = {finding["rule"] for finding in json.loads(linted.stdout)}
        assert "public-runtime-registry" not in rules, manifest.name


def test_a_digest_named_by_a_manifest_is_mirrored_and_then_up_to_date(
    tmp_path: Path,
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
) -> None:
    pushed = seeder.push_release(SENSOR, "1.4.6", layer_size=256, base_size=512)
    for runtime in (AGENT, HUB):
        seeder.push_release(runtime, "1.4.20", layer_size=256, base_size=512)
        seeder.tag(runtime, "1.4.20", "1.4")
    source = json.loads(
        (DATA / "14_Azure-Samples_iot-central-docs-samples_envsensor-1-4.json").read_text()
    )
    text = json.dumps(source).replace(f"{SENSOR}:1.4.6", f"{SENSOR}@{pushed.digest}")
    manifest = tmp_path / "pinned.json"
    manifest.write_text(text)
    args = ("--from-manifests", str(manifest))
    synced = mirror("sync", upstream, target, tmp_path, *args)
    assert synced.returncode == 0, synced.stderr
    assert target_seeder.digest_of(SENSOR, pushed.digest) == pushed.digest
    assert target_seeder.tags(SENSOR) == []  # a digest is not a tag
    planned = mirror("plan", upstream, target, tmp_path, *args)
    assert planned.returncode == 0, planned.stdout + planned.stderr


def test_bad_deployment_options_are_one_line_usage_errors(tmp_path: Path) -> None:
    for args, message in (
        (("--set", "NOVALUE"), "--set 'NOVALUE': write NAME=VALUE"),
        (("--allow", "everything"), "--allow 'everything': one of latest, debug"),
        (("--all-tags",), "--all-tags and --from-manifests do not go together"),
    ):
        result = run_mirror("plan", "--from-manifests", str(DATA), *args, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip() == f"mirror: error: {message}"


def test_the_configs_deployments_add_to_the_policy_for_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deployments").mkdir()
    for name in (
        "03_Azure_iotedge_metrics-collector-example.json",
        "04_Azure_iotedgedev_tool-template.json",
    ):
        shutil.copy(DATA / name, tmp_path / "deployments")
    config = tmp_path / "mirror.yaml"
    config.write_text(
        "version: 1\ndeployments:\n  files: ['deployments/*.json']\n"
        "  set: {EDGE_RUNTIME_VERSION: '1.5'}\n"
    )
    monkeypatch.chdir(tmp_path)
    job = Job.from_options(config, None, None, None, False, None, deployments=True)
    assert Job.from_options(config, None, None, None, False, None).demand is None  # tags list
    assert job.repositories == (AGENT, HUB, COLLECTOR, SENSOR)
    select = job.selector()
    chosen = {
        v.tag: v.reason
        for v in select(AGENT, ["1.1", "1.1.13", "1.5", "1.5.3", "1.6.1"])
        if v.selected
    }
    assert set(chosen) == {"1.1", "1.1.13", "1.5", "1.5.3", "1.6.1"}  # the policy's lines, and 1.1
    assert chosen["1.1"].startswith("select: named by ") and "03_Azure" in chosen["1.1"]
    assert [v.tag for v in select(SENSOR, ["1.0", "1.5.3"]) if v.selected] == ["1.0"]


def test_a_secret_in_the_environment_is_never_substituted_into_an_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = json.loads((DATA / "04_Azure_iotedgedev_tool-template.json").read_text())
    text = json.dumps(manifest).replace("${EDGE_RUNTIME_VERSION}", "${PULL_SECRET}")
    (tmp_path / "d.json").write_text(text)
    (tmp_path / "mirror.yaml").write_text(
        "version: 1\nregistries:\n  myacr.azurecr.io:\n"
        "    pull: {type: basic, username: u, password_env: PULL_SECRET}\n"
    )
    monkeypatch.setenv("PULL_SECRET", "hunter2")
    monkeypatch.setenv("EDGE_RUNTIME_VERSION", "1.5")
    monkeypatch.chdir(tmp_path)
    job = Job.from_options(
        None, None, None, None, False, None, deployments=True, manifests=[tmp_path / "d.json"]
    )
    assert job.demand is not None
    assert [p.image for p in job.demand.unresolved] == [
        f"mcr.microsoft.com/{name}:${{PULL_SECRET}}" for name in (AGENT, HUB)
    ]
    assert "hunter2" not in repr(job.demand)

"""End to end against two real registries: what the target holds after each sync.

Upstream is seeded with multi-platform releases (Docker manifest lists and OCI
indexes with attestations, three platforms, base layers shared across tags and
repositories); assertions are on digests, on what the target holds, and on the
requests each registry logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest

from mirror.engine.copy import CopyResult
from mirror.engine.sync import SyncOutcome, sync
from mirror.governance.decide import Action, Governance, OnRebuild
from mirror.governance.selection import select_all
from mirror.transport.layout import OciLayout
from mirror.transport.registry import RegistryClient
from tests.conftest import client_for
from tests.support.images import Pushed, Seeder
from tests.support.registry import Registry, Request
from tests.support.reporting import Quiet

REPOS = ("azureiotedge-agent", "azureiotedge-hub")


def seed_releases(
    seeder: Seeder, versions: Sequence[str] = ("1.5.0", "1.5.1", "1.5.2")
) -> list[Pushed]:
    pushed = []
    for index, version in enumerate(versions):
        for repo in REPOS:
            # Alternate Docker lists and OCI indexes (with attestations), like MCR over time.
            oci = index % 2 == 1
            pushed.append(seeder.push_release(repo, version, oci=oci, attestation=oci))
    for repo in REPOS:
        seeder.tag(repo, versions[-1], versions[-1].rsplit(".", 1)[0])
    return pushed


def run(
    source: RegistryClient | OciLayout,
    target: RegistryClient | OciLayout,
    governance: Governance | None = None,
) -> SyncOutcome:
    return sync(source, target, REPOS, Quiet(), select=select_all, governance=governance)


def assert_mirrored(upstream: Seeder, mirror: Seeder, pushed: Sequence[Pushed]) -> None:
    """Every upstream tag has the same digest in the mirror, with all its content."""
    for repo in REPOS:
        tags = upstream.tags(repo)
        assert mirror.tags(repo) == tags
        for tag in tags:
            assert mirror.digest_of(repo, tag) == upstream.digest_of(repo, tag), f"{repo}:{tag}"
    for release in pushed:
        for child in release.children:
            assert mirror.has_manifest(release.repository, child)
        for blob in release.blobs:
            assert mirror.has_blob(release.repository, blob)


def count(requests: Sequence[Request], method: str, fragment: str) -> int:
    return sum(1 for r in requests if r.method == method and fragment in r.path)


def test_cold_sync_copies_every_platform_byte_for_byte(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    pushed = seed_releases(seeder)
    mark = len(upstream.requests())
    outcome = run(source_client, target_client)
    fetched = [r for r in upstream.requests_since(mark) if "/manifests/" in r.path]
    assert outcome.ok, outcome.result.failures
    assert_mirrored(seeder, target_seeder, pushed)
    # Tags new to the target are fetched at once (one GET by tag), not HEAD-ed first;
    # each manifest is fetched once.
    assert count(fetched, "HEAD", "/manifests/") == 0
    tags = sum(len(seeder.tags(repo)) for repo in REPOS)
    children = {(p.repository, c) for p in pushed for c in p.children}
    # and each manifest written is asked once for its referrers (the referrers tag)
    asked = [r for r in fetched if "/manifests/sha256-" in r.path]
    subjects = {(p.repository, d) for p in pushed for d in (p.digest, *p.children)}
    assert len(asked) == len(subjects)
    assert len(fetched) - len(asked) == tags + len(children)
    assert {step.tag for step in outcome.steps if step.action is Action.CREATE} == {
        "1.5",
        "1.5.0",
        "1.5.1",
        "1.5.2",
    }


def test_shared_layers_are_uploaded_once_then_mounted(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    pushed = seed_releases(seeder)
    mark = len(target.requests())
    outcome = run(source_client, target_client)
    requests = target.requests_since(mark)
    unique = {blob for release in pushed for blob in release.blobs}
    uploads = count(requests, "PUT", "/blobs/uploads/")
    mounts = sum(
        1
        for r in requests
        if r.method == "POST"
        and r.status == 201
        and "from=azureiotedge-agent" in r.path
        and r.path.startswith("/v2/azureiotedge-hub/")
    )
    assert uploads == len(unique) == outcome.result.uploaded
    assert mounts == outcome.result.mounted > 0
    # Every blob was pulled from upstream exactly once.
    pulled = [r.path for r in upstream.requests() if r.method == "GET" and "/blobs/" in r.path]
    assert len({p.rsplit("/", 1)[1] for p in pulled}) == len(pulled) == len(unique)


def test_noop_sync_costs_one_listing_per_repository_and_one_head_per_tag(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    seed_releases(seeder)
    run(source_client, target_client)
    tags = sum(len(seeder.tags(repo)) for repo in REPOS)
    up_mark, down_mark = len(upstream.requests()), len(target.requests())

    outcome = run(source_client, target_client)

    assert outcome.ok and not any(step.pending for step in outcome.steps)
    for registry, mark in ((upstream, up_mark), (target, down_mark)):
        requests = registry.requests_since(mark)
        assert len(requests) == len(REPOS) + tags, requests
        assert count(requests, "GET", "/tags/list") == len(REPOS)
        assert count(requests, "HEAD", "/manifests/") == tags


def test_incremental_sync_transfers_only_new_blobs(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    pushed = seed_releases(seeder)
    run(source_client, target_client)
    new = [seeder.push_release(repo, "1.5.3") for repo in REPOS]
    for repo in REPOS:
        seeder.tag(repo, "1.5.3", "1.5")
    new_blobs = {(r.repository, b) for r in new for b in r.blobs} - {
        (r.repository, b) for r in pushed for b in r.blobs
    }
    up_mark, down_mark = len(upstream.requests()), len(target.requests())

    outcome = run(source_client, target_client)

    assert outcome.ok
    steps = {(s.repository, s.tag): s for s in outcome.steps}
    assert steps[("azureiotedge-agent", "1.5")].reason == "update: rolling 1.5 -> 1.5.3"
    assert steps[("azureiotedge-agent", "1.5.3")].action is Action.CREATE
    pulled = [
        r for r in upstream.requests_since(up_mark) if r.method == "GET" and "/blobs/" in r.path
    ]
    pushed_now = count(target.requests_since(down_mark), "PUT", "/blobs/uploads/")
    assert len(pulled) == pushed_now == len({digest for _, digest in new_blobs})
    assert_mirrored(seeder, target_seeder, [*pushed, *new])


def test_a_corrupt_source_blob_never_reaches_the_target(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    """Flip bytes of a layer in upstream's storage: the registry serves the wrong bytes,
    the copy refuses them, and no tag that needs the layer is written."""
    release = seeder.push_release("azureiotedge-agent", "1.5.0")
    other = seeder.push_release(
        "azureiotedge-agent", "1.6.0", platforms=(("linux", "amd64", None),), salt="x"
    )
    victim = release.blobs[-1]  # the arm/v7 app layer: only 1.5.0 has it
    data = next(upstream.storage.rglob(f"blobs/sha256/*/{victim.split(':')[1]}/data"))
    data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))

    outcome = sync(source_client, target_client, ["azureiotedge-agent"], Quiet(), select=select_all)

    assert not outcome.ok
    assert any("digest mismatch" in message for _, message in outcome.result.failures)
    assert not target_seeder.has_blob("azureiotedge-agent", victim)
    assert target_seeder.tags("azureiotedge-agent") == ["1.6.0"]
    assert target_seeder.digest_of("azureiotedge-agent", "1.6.0") == other.digest


def test_a_rebuilt_specific_tag_is_held_and_reported_as_drift(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    original = seeder.push_release("azureiotedge-agent", "1.5.3")
    sync(source_client, target_client, ["azureiotedge-agent"], Quiet(), select=select_all)
    rebuilt = seeder.push_release("azureiotedge-agent", "1.5.3", salt="base image fix")
    governance = Governance(
        on_rebuild={"azureiotedge-agent": OnRebuild.MIRROR_AS_DERIVED_TAG}, today=date(2026, 11, 26)
    )

    outcome = sync(
        source_client,
        target_client,
        ["azureiotedge-agent"],
        Quiet(),
        select=select_all,
        governance=governance,
    )

    steps = {s.tag: s for s in outcome.steps}
    assert steps["1.5.3"].action is Action.HOLD and steps["1.5.3"].drift
    assert target_seeder.digest_of("azureiotedge-agent", "1.5.3") == original.digest
    assert target_seeder.digest_of("azureiotedge-agent", "1.5.3-rebuild-20261126") == rebuilt.digest

    again = sync(
        source_client,
        target_client,
        ["azureiotedge-agent"],
        Quiet(),
        select=select_all,
        governance=Governance(
            on_rebuild={"azureiotedge-agent": OnRebuild.MIRROR_AS_DERIVED_TAG},
            today=date(2026, 11, 27),
        ),
    )
    assert [s.tag for s in again.steps if s.pending] == []
    assert "mirrored as 1.5.3-rebuild-20261126" in {s.tag: s for s in again.steps}["1.5.3"].reason


def test_a_rolling_tag_moved_backwards_upstream_is_held(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    seed_releases(seeder, ("1.5.0", "1.5.1"))
    run(source_client, target_client)
    newest = target_seeder.digest_of("azureiotedge-agent", "1.5")
    seeder.tag("azureiotedge-agent", "1.5.0", "1.5")  # upstream points 1.5 back at 1.5.0

    outcome = run(source_client, target_client)

    step = {(s.repository, s.tag): s for s in outcome.steps}[("azureiotedge-agent", "1.5")]
    assert step.action is Action.HOLD
    assert step.reason == "hold: rolling 1.5 would move backwards to 1.5.0"
    assert target_seeder.digest_of("azureiotedge-agent", "1.5") == newest

    allowed = run(source_client, target_client, Governance(allow_backwards=True))
    assert allowed.ok
    assert target_seeder.digest_of("azureiotedge-agent", "1.5") == seeder.digest_of(
        "azureiotedge-agent", "1.5.0"
    )


def test_oci_layout_carries_images_across_an_air_gap(
    tmp_path: Path,
    upstream: Registry,
    seeder: Seeder,
    source_client: RegistryClient,
) -> None:
    """Export to a layout on the connected side, import into a registry on the other."""
    pushed = seed_releases(seeder)
    export = OciLayout(tmp_path / "carry", create=True)
    exported = run(source_client, export)
    assert exported.ok
    assert (tmp_path / "carry" / "oci-layout").exists()
    assert not list((tmp_path / "carry").rglob(".partial-*"))

    isolated = Registry(tmp_path / "isolated", "isolated").start()
    try:
        importer = client_for(isolated, push=True)
        imported = run(OciLayout(tmp_path / "carry"), importer)
        importer.close()
        assert imported.ok, imported.result.failures
        mirror = Seeder(isolated.url)
        assert_mirrored(seeder, mirror, pushed)
        mirror.close()
    finally:
        isolated.stop()

    again = run(source_client, OciLayout(tmp_path / "carry", create=True))
    assert not any(step.pending for step in again.steps)
    assert again.result == CopyResult()


def test_a_missing_repository_fails_with_a_clear_error(
    upstream: Registry,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    from mirror.errors import NotFound

    with pytest.raises(NotFound, match="repository not found"):
        sync(source_client, target_client, ["no-such-repo"], Quiet(), select=select_all)

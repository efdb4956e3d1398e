"""Planning is pure: decisions per tag, and the content a target needs, in order."""

from __future__ import annotations

import json
from datetime import date

from mirror import digest
from mirror.engine.plan import Observed, TagStep, plan_content, plan_tags
from mirror.governance.decide import Action, Governance, OnRebuild
from mirror.manifest import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, Manifest


def d(name: str) -> str:
    return digest.compute(name.encode())


def desc(name: str) -> Descriptor:
    return Descriptor(DOCKER_MANIFEST_LIST, d(name), 100)


def observed(tag: str, source: str | None, target: str | None, repo: str = "agent") -> Observed:
    return Observed(repo, tag, desc(source) if source else None, desc(target) if target else None)


def by_tag(steps: list[TagStep]) -> dict[str, TagStep]:
    return {step.tag: step for step in steps}


def test_absent_tags_are_created_equal_ones_skipped() -> None:
    steps = by_tag(plan_tags([observed("1.5.3", "a", None), observed("1.5.2", "b", "b")]))
    assert steps["1.5.3"].action is Action.CREATE
    assert steps["1.5.3"].reason == "create: specific"
    assert steps["1.5.2"].action is Action.SKIP
    assert steps["1.5.2"].reason == "skip: up to date"


def test_a_rebuilt_specific_tag_is_held_as_drift() -> None:
    [step] = plan_tags([observed("1.5.3", "rebuilt", "original")])
    assert step.action is Action.HOLD
    assert step.drift
    assert step.reason == "hold: upstream rebuilt specific tag 1.5.3"
    assert not step.pending


def test_a_rebuild_can_be_mirrored_under_a_derived_tag() -> None:
    governance = Governance(
        on_rebuild={"agent": OnRebuild.MIRROR_AS_DERIVED_TAG}, today=date(2026, 11, 26)
    )
    steps = by_tag(plan_tags([observed("1.5.3", "rebuilt", "original")], governance))
    assert steps["1.5.3"].action is Action.HOLD
    derived = steps["1.5.3-rebuild-20261126"]
    assert derived.action is Action.CREATE
    assert derived.source_digest == d("rebuilt")


def test_a_derived_tag_is_not_mirrored_twice() -> None:
    governance = Governance(
        on_rebuild={"agent": OnRebuild.MIRROR_AS_DERIVED_TAG}, today=date(2026, 11, 27)
    )
    earlier = {"agent": {"1.5.3-rebuild-20261126": d("rebuilt")}}
    steps = plan_tags([observed("1.5.3", "rebuilt", "original")], governance, earlier)
    assert [s.tag for s in steps] == ["1.5.3"]
    assert "mirrored as 1.5.3-rebuild-20261126" in steps[0].reason


def test_rolling_tag_moves_forward_to_the_newest_specific_version() -> None:
    steps = by_tag(
        plan_tags(
            [
                observed("1.5", "v3", "v2"),
                observed("1.5.2", "v2", "v2"),
                observed("1.5.3", "v3", None),
            ]
        )
    )
    assert steps["1.5"].action is Action.UPDATE
    assert steps["1.5"].reason == "update: rolling 1.5 -> 1.5.3"


def test_rolling_tag_moved_backwards_upstream_is_held() -> None:
    steps = by_tag(
        plan_tags(
            [
                observed("1.5", "v2", "v3"),
                observed("1.5.2", "v2", "v2"),
                observed("1.5.3", "v3", "v3"),
            ]
        )
    )
    assert steps["1.5"].action is Action.HOLD
    assert "backwards" in steps["1.5"].reason
    allowed = by_tag(
        plan_tags(
            [
                observed("1.5", "v2", "v3"),
                observed("1.5.2", "v2", "v2"),
                observed("1.5.3", "v3", "v3"),
            ],
            Governance(allow_backwards=True),
        )
    )
    assert allowed["1.5"].action is Action.UPDATE


def test_tags_outside_the_grammar_are_copied_when_they_differ() -> None:
    steps = by_tag(
        plan_tags(
            [observed("nightly", "b", "a"), observed("edge", "c", None), observed("x", "d", "d")]
        )
    )
    assert steps["nightly"].action is Action.UPDATE
    assert steps["edge"].action is Action.CREATE
    assert steps["x"].action is Action.SKIP


def test_a_tag_gone_from_the_source_is_skipped() -> None:
    [step] = plan_tags([observed("1.5.3", None, "a")])
    assert step.action is Action.SKIP
    assert step.reason == "skip: listed in the source, but its manifest is not there"


# -- content ---------------------------------------------------------------------------


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def build(
    repo: str, version: str, platforms: tuple[str, ...] = ("amd64", "arm64")
) -> tuple[Manifest, dict[tuple[str, str], Manifest]]:
    """An index for `version` whose images share a per-platform base layer."""
    manifests: dict[tuple[str, str], Manifest] = {}
    entries = []
    for arch in platforms:
        blobs = [
            {"mediaType": "application/octet-stream", "size": 1000, "digest": d(f"base {arch}")},
            {
                "mediaType": "application/octet-stream",
                "size": 10,
                "digest": d(f"app {repo} {version} {arch}"),
            },
        ]
        raw = _json(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": "application/json",
                    "size": 1,
                    "digest": d(f"config {repo} {version} {arch}"),
                },
                "layers": blobs,
            }
        )
        child = Manifest.parse(raw)
        manifests[(repo, child.digest)] = child
        entries.append(
            {
                "mediaType": DOCKER_MANIFEST,
                "size": len(raw),
                "digest": child.digest,
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = Manifest.parse(
        _json({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": entries})
    )
    manifests[(repo, index.digest)] = index
    return index, manifests


def step(repo: str, tag: str, index: Manifest) -> TagStep:
    return TagStep(repo, tag, Action.CREATE, "create: specific", index.digest)


def test_content_plan_orders_blobs_manifests_tags_and_deduplicates() -> None:
    index_a, manifests = build("agent", "1.5.3")
    index_h, more = build("hub", "1.5.3")
    manifests.update(more)
    steps = [
        step("agent", "1.5.3", index_a),
        step("agent", "1.5", index_a),
        step("hub", "1.5.3", index_h),
    ]
    plan = plan_content(steps, manifests)

    uploads = [b for b in plan.blobs if b.mount_from is None]
    mounts = [b for b in plan.blobs if b.mount_from is not None]
    # Every (repository, digest) once; shared base layers uploaded once, mounted into hub.
    assert len({(b.repository, b.descriptor.digest) for b in plan.blobs}) == len(plan.blobs)
    assert {b.descriptor.digest for b in mounts} == {d("base amd64"), d("base arm64")}
    assert all(b.repository == "hub" and b.mount_from == "agent" for b in mounts)
    assert len(uploads) == 2 * 2 * 2 + 2  # per repo: 2 configs + 2 app layers; plus 2 bases
    # Largest uploads first; mounts after uploads.
    assert plan.blobs.index(mounts[0]) > plan.blobs.index(uploads[-1])
    assert uploads[0].descriptor.size >= uploads[-1].descriptor.size
    # Child manifests once per repository; the index goes under each tag.
    assert len(plan.manifests) == 4
    assert [(t.repository, t.tag) for t in plan.tags] == [
        ("agent", "1.5.3"),
        ("agent", "1.5"),
        ("hub", "1.5.3"),
    ]
    # A tag waits for every child manifest, also when its index was planned for another tag.
    children = {c.digest for c in index_a.children()}
    assert set(plan.tags[0].needs_manifests) == children
    assert set(plan.tags[1].needs_manifests) == children
    # A child manifest waits for its own blobs.
    first = plan.manifests[0]
    assert set(first.needs_blobs) == {b.digest for b in first.manifest.blobs()}
    assert plan.bytes_total == sum(b.descriptor.size for b in uploads)


def test_content_the_target_holds_is_not_planned_again() -> None:
    index, manifests = build("agent", "1.5.3")
    plan = plan_content([step("agent", "1.5", index)], manifests, present={("agent", index.digest)})
    assert plan.blobs == [] and plan.manifests == []
    assert [(t.tag, t.needs_manifests) for t in plan.tags] == [("1.5", ())]


def test_steps_that_write_nothing_plan_nothing() -> None:
    index, manifests = build("agent", "1.5.3")
    held = TagStep("agent", "1.5.3", Action.HOLD, "hold", index.digest, d("other"))
    assert plan_content([held], manifests).tags == []

"""Tag governance decisions: specific tags write-once (a rebuild is held, or mirrored
under a derived tag), rolling tags forward only."""

from __future__ import annotations

from datetime import date

import pytest

from mirror.governance.decide import Action, Decision, OnRebuild, decide, derived_tag, rebuilt_from
from mirror.governance.versions import parse_tag

# --- decisions: specific tags ---------------------------------------------------------

OLD, NEW, OTHER = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
DAY = date(2026, 9, 1)


def specific(
    source: str,
    target: str | None,
    on_rebuild: OnRebuild = OnRebuild.HOLD,
    mirrored: dict[str, str] | None = None,
) -> Decision:
    return decide(
        "1.5.3",
        source,
        target,
        {"1.5.3": source},
        on_rebuild=on_rebuild,
        today=DAY,
        target_tags=mirrored,
    )


def test_specific_created_once_then_left_alone() -> None:
    assert specific(NEW, None) == Decision("1.5.3", Action.CREATE, "create: specific")
    assert specific(NEW, NEW) == Decision("1.5.3", Action.SKIP, "skip: up to date")


def test_specific_rebuilt_upstream_is_held_as_drift() -> None:
    assert specific(NEW, OLD) == Decision(
        "1.5.3", Action.HOLD, "hold: upstream rebuilt specific tag 1.5.3", drift=True
    )


def test_specific_rebuilt_upstream_mirrored_as_derived_tag() -> None:
    decision = specific(NEW, OLD, OnRebuild.MIRROR_AS_DERIVED_TAG, {"1.5.3": OLD})
    assert decision == Decision(
        "1.5.3",
        Action.HOLD,
        "hold: upstream rebuilt specific tag 1.5.3 (new content as 1.5.3-rebuild-20260901)",
        derived_tag="1.5.3-rebuild-20260901",
        drift=True,
    )


def test_a_rebuild_already_mirrored_is_not_mirrored_again() -> None:
    mirrored = {"1.5.3": OLD, "1.5.3-rebuild-20260815": NEW}
    decision = specific(NEW, OLD, OnRebuild.MIRROR_AS_DERIVED_TAG, mirrored)
    assert decision.derived_tag is None
    assert (
        decision.reason
        == "hold: upstream rebuilt specific tag 1.5.3 (mirrored as 1.5.3-rebuild-20260815)"
    )
    assert decision.drift


def test_a_second_rebuild_on_the_same_day_gets_its_own_name() -> None:
    mirrored = {"1.5.3": OLD, "1.5.3-rebuild-20260901": OTHER}
    decision = specific(NEW, OLD, OnRebuild.MIRROR_AS_DERIVED_TAG, mirrored)
    assert decision.derived_tag == "1.5.3-rebuild-20260901-2"


def test_derived_tags_need_the_date() -> None:
    with pytest.raises(ValueError, match="needs the date"):
        decide(parse_tag("1.5.3"), NEW, OLD, {}, on_rebuild=OnRebuild.MIRROR_AS_DERIVED_TAG)


@pytest.mark.parametrize(
    ("tag", "origin"),
    [
        ("1.5.3-rebuild-20260901", ("1.5.3", date(2026, 9, 1))),
        ("1.5.3-rebuild-20260901-2", ("1.5.3", date(2026, 9, 1))),
        ("1.0.9.4-linux-amd64-rebuild-20200101", ("1.0.9.4-linux-amd64", date(2020, 1, 1))),
        ("1.5.3-rebuild-20261399", None),
        ("1.5.3-rebuild-2026091", None),
        ("1.5.3", None),
    ],
)
def test_rebuilt_from(tag: str, origin: tuple[str, date] | None) -> None:
    assert rebuilt_from(tag) == origin


def test_derived_tag_name() -> None:
    assert derived_tag("1.0.9.4", date(2020, 2, 3)) == "1.0.9.4-rebuild-20200203"
    taken = ["1.0.9.4-rebuild-20200203", "1.0.9.4-rebuild-20200203-2"]
    assert derived_tag("1.0.9.4", date(2020, 2, 3), taken) == "1.0.9.4-rebuild-20200203-3"


# --- decisions: rolling tags ----------------------------------------------------------

D = {
    version: f"sha256:{index:064x}"
    for index, version in enumerate(["1.5.2", "1.5.43", "1.5.44", "1.6.0", "1.6.1"])
}


def upstream(**rolling: str) -> dict[str, str]:
    tags = {**D, **{f"{v}-linux-amd64": d.replace("sha256:0", "sha256:f") for v, d in D.items()}}
    tags.update(
        {line.lstrip("_").replace("_", "."): D[version] for line, version in rolling.items()}
    )
    return tags


def rolling(
    tag: str,
    tags: dict[str, str],
    target: str | None,
    *,
    allow_backwards: bool = False,
    mirrored: dict[str, str] | None = None,
) -> tuple[Action, str]:
    decision = decide(
        parse_tag(tag),
        tags[tag],
        target,
        tags,
        allow_backwards=allow_backwards,
        target_tags=mirrored,
    )
    assert not decision.drift
    assert decision.derived_tag is None
    return decision.action, decision.reason


ROLLING_CASES: list[tuple[str, dict[str, str], str | None, bool, tuple[Action, str]]] = [
    ("1.5", upstream(_1_5="1.5.44"), None, False, (Action.CREATE, "create: rolling 1.5 -> 1.5.44")),
    (
        "1.5",
        upstream(_1_5="1.5.44"),
        D["1.5.43"],
        False,
        (Action.UPDATE, "update: rolling 1.5 -> 1.5.44"),
    ),
    ("1.5", upstream(_1_5="1.5.44"), D["1.5.44"], False, (Action.SKIP, "skip: up to date")),
    (
        "1.5",
        upstream(_1_5="1.5.44"),
        OTHER,
        False,
        (Action.UPDATE, "update: rolling 1.5 -> 1.5.44"),
    ),
    (
        "1.5",
        upstream(_1_5="1.5.2"),
        D["1.5.44"],
        False,
        (Action.HOLD, "hold: rolling 1.5 would move backwards to 1.5.2"),
    ),
    (
        "1.5",
        upstream(_1_5="1.5.2"),
        D["1.5.44"],
        True,
        (Action.UPDATE, "update: rolling 1.5 -> 1.5.2 (backwards, allowed)"),
    ),
    (
        "1.5",
        upstream(_1_5="1.5.43"),
        D["1.5.2"],
        False,
        (Action.HOLD, "hold: rolling 1.5 upstream is 1.5.43, not the newest 1.5.44"),
    ),
    (
        "1.5",
        upstream(_1_5="1.5.43"),
        D["1.5.2"],
        True,
        (Action.UPDATE, "update: rolling 1.5 -> 1.5.43"),
    ),
    (
        "1.5",
        upstream(_1_5="1.5.43"),
        None,
        False,
        (Action.HOLD, "hold: rolling 1.5 upstream is 1.5.43, not the newest 1.5.44"),
    ),
    (
        "1.6",
        upstream(_1_6="1.6.1"),
        D["1.6.0"],
        False,
        (Action.UPDATE, "update: rolling 1.6 -> 1.6.1"),
    ),
    (
        "1.6",
        {**upstream(), "1.6": OTHER},
        D["1.6.0"],
        True,
        (Action.HOLD, "hold: rolling 1.6 points to content no specific tag of line 1.6 has"),
    ),
    (
        "1.6",
        {**upstream(_1_6="1.6.1"), "1.6": D["1.5.44"]},
        None,
        False,
        (Action.HOLD, "hold: rolling 1.6 points to content no specific tag of line 1.6 has"),
    ),
    (
        "1.7",
        {**upstream(), "1.7": OTHER},
        None,
        False,
        (Action.HOLD, "hold: no specific tag of line 1.7 upstream for rolling 1.7"),
    ),
]


@pytest.mark.parametrize(("tag", "tags", "target", "backwards", "expected"), ROLLING_CASES)
def test_rolling_moves_only_forward(
    tag: str,
    tags: dict[str, str],
    target: str | None,
    backwards: bool,
    expected: tuple[Action, str],
) -> None:
    assert rolling(tag, tags, target, allow_backwards=backwards) == expected


def test_per_architecture_rolling_follows_its_own_variant() -> None:
    tags = upstream()
    tags["1.5-linux-amd64"] = tags["1.5.44-linux-amd64"]
    assert rolling("1.5-linux-amd64", tags, None) == (
        Action.CREATE,
        "create: rolling 1.5-linux-amd64 -> 1.5.44-linux-amd64",
    )
    tags["1.5-linux-amd64"] = D["1.5.44"]  # the multi-platform content, not this variant's
    assert rolling("1.5-linux-amd64", tags, None)[0] is Action.HOLD


def test_rolling_backwards_detected_from_the_mirror_when_upstream_dropped_a_version() -> None:
    tags = upstream(_1_5="1.5.43")
    del tags["1.5.44"]
    assert rolling("1.5", tags, D["1.5.44"]) == (Action.UPDATE, "update: rolling 1.5 -> 1.5.43")
    mirrored = {"1.5.44": D["1.5.44"], "1.5": D["1.5.44"]}
    assert rolling("1.5", tags, D["1.5.44"], mirrored=mirrored) == (
        Action.HOLD,
        "hold: rolling 1.5 would move backwards to 1.5.43",
    )


def test_decide_refuses_tags_of_no_class() -> None:
    with pytest.raises(ValueError, match="neither a specific nor a rolling tag"):
        decide(parse_tag("latest"), NEW, None, {"latest": NEW})

"""Scopes: which tags a run looks at, and how a rolling tag drags in the releases it may
move to (never older ones than the scope names)."""

from __future__ import annotations

import pytest

from mirror.governance.scope import EVERYTHING, Scope
from mirror.governance.versions import Line, Version, parse_tag

AGENT, HUB = "azureiotedge-agent", "azureiotedge-hub"


def versions(*texts: str) -> frozenset[Version]:
    return frozenset(Version.parse(text) for text in texts)


def lines(*texts: str) -> frozenset[Line]:
    return frozenset(Line.parse(text) for text in texts)


def tags(*texts: str) -> frozenset[str]:
    return frozenset(texts)


# --- covers -------------------------------------------------------------------------

COVERS = [
    # every tag
    (EVERYTHING, "1.5.45", True),
    (EVERYTHING, "latest", True),
    (EVERYTHING, "not-a-version", True),
    (Scope(repositories=frozenset({AGENT})), "1.6", True),
    # a version: its tags (any variant) and its line's rolling tags
    (Scope(versions=versions("1.5.45")), "1.5.45", True),
    (Scope(versions=versions("1.5.45")), "1.5.45-linux-amd64", True),
    (Scope(versions=versions("1.5.45")), "1.5.45-linux-arm64v8.debug", True),
    (Scope(versions=versions("1.5.45")), "1.5", True),
    (Scope(versions=versions("1.5.45")), "1.5-linux-arm32v7", True),
    (Scope(versions=versions("1.5.45")), "1.5.44", False),
    (Scope(versions=versions("1.5.45")), "1.5.46", False),
    (Scope(versions=versions("1.5.45")), "1.5.45-rc1", False),
    (Scope(versions=versions("1.5.45")), "1.6", False),
    (Scope(versions=versions("1.5.45")), "1.6.0", False),
    (Scope(versions=versions("1.5.45")), "latest", False),
    (Scope(versions=versions("1.6.0-rc1")), "1.6.0-rc.1", True),  # one candidate, 2 spellings
    (Scope(versions=versions("1.0.9.4")), "1.0.9", False),
    (Scope(versions=versions("1.0.9")), "1.0.9.4", False),
    # lines: every tag of them
    (Scope(lines=lines("1.5")), "1.5.3", True),
    (Scope(lines=lines("1.5")), "1.5.3-windows-amd64", True),
    (Scope(lines=lines("1.5")), "1.5", True),
    (Scope(lines=lines("1.5")), "1.5.0-rc2", True),
    (Scope(lines=lines("1.5")), "1.6.0", False),
    (Scope(lines=lines("1.5")), "1.6", False),
    (Scope(lines=lines("1.5")), "latest", False),
    # tags: by name only
    (Scope(tags=tags("1.5")), "1.5", True),
    (Scope(tags=tags("1.5")), "1.5.45", False),
    (Scope(tags=tags("1.5")), "1.5-linux-amd64", False),
    (Scope(tags=tags("latest")), "latest", True),
    (Scope(tags=tags("1.5")), "1.6", False),
    # criteria together: any of them names the tag
    (Scope(versions=versions("1.5.45"), tags=tags("1.6")), "1.6", True),
    (Scope(versions=versions("1.5.45"), tags=tags("1.6")), "1.6.1", False),
    (Scope(lines=lines("1.6"), tags=tags("latest")), "latest", True),
]


@pytest.mark.parametrize(("scope", "tag", "covered"), COVERS)
def test_covers(scope: Scope, tag: str, covered: bool) -> None:
    assert scope.covers(parse_tag(tag)) is covered


# --- narrow -------------------------------------------------------------------------

SELECTED = ["1.5.43", "1.5.44", "1.5.45", "1.5.46", "1.5", "1.6.0", "1.6.1", "1.6"]

NARROW = [
    (EVERYTHING, SELECTED),
    (Scope(repositories=frozenset({HUB})), SELECTED),
    # a release: its tag, its rolling tag, and the releases the rolling tag may move to
    (Scope(versions=versions("1.5.44")), ["1.5.44", "1.5.45", "1.5.46", "1.5"]),
    (Scope(versions=versions("1.5.46")), ["1.5.46", "1.5"]),
    (Scope(versions=versions("1.6.0")), ["1.6.0", "1.6.1", "1.6"]),
    (Scope(versions=versions("1.5.45", "1.6.1")), ["1.5.45", "1.5.46", "1.5", "1.6.1", "1.6"]),
    # a release the policy did not select: the rolling tag, from the newest selected
    (Scope(versions=versions("1.5.50")), ["1.5.46", "1.5"]),
    # a rolling tag alone: the newest selected specific tag of its line, and itself
    (Scope(tags=tags("1.5")), ["1.5.46", "1.5"]),
    (Scope(tags=tags("1.6")), ["1.6.1", "1.6"]),
    # naming a release with the rolling tag keeps it and newer, never older
    (Scope(tags=tags("1.5.44", "1.5")), ["1.5.44", "1.5.45", "1.5.46", "1.5"]),
    (Scope(tags=tags("1.5.45", "1.5")), ["1.5.45", "1.5.46", "1.5"]),
    # a specific tag alone: no expansion
    (Scope(tags=tags("1.5.44")), ["1.5.44"]),
    # lines: every selected tag of them
    (Scope(lines=lines("1.6")), ["1.6.0", "1.6.1", "1.6"]),
    (Scope(lines=lines("1.7")), []),
    (Scope(tags=tags("latest")), []),
]


@pytest.mark.parametrize(("scope", "expected"), NARROW)
def test_narrow(scope: Scope, expected: list[str]) -> None:
    assert scope.narrow(SELECTED) == expected


def test_narrow_keeps_the_selected_order() -> None:
    selected = ["1.5", "1.5.46", "1.5.44", "1.5.45"]
    assert Scope(tags=tags("1.5")).narrow(selected) == ["1.5", "1.5.46"]
    assert Scope(versions=versions("1.5.45")).narrow(selected) == ["1.5", "1.5.46", "1.5.45"]


def test_a_rolling_tag_without_releases_is_alone() -> None:
    assert Scope(tags=tags("1.7")).narrow(["1.7", "1.6.1"]) == ["1.7"]


PER_ARCH = [
    "1.5.45",
    "1.5.46",
    "1.5.45-linux-amd64",
    "1.5.46-linux-amd64",
    "1.5.47-linux-amd64",
    "1.5.47.debug",
    "1.5.46-linux-amd64.debug",
    "1.5",
    "1.5-linux-amd64",
    "1.5.debug",
]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        # the multi-platform rolling tag moves among multi-platform tags only
        (Scope(tags=tags("1.5")), ["1.5.46", "1.5"]),
        # the per-architecture one among its own architecture's
        (Scope(tags=tags("1.5-linux-amd64")), ["1.5.47-linux-amd64", "1.5-linux-amd64"]),
        # debug among debug
        (Scope(tags=tags("1.5.debug")), ["1.5.47.debug", "1.5.debug"]),
        (
            Scope(versions=versions("1.5.46")),
            [
                "1.5.46",
                "1.5.46-linux-amd64",
                "1.5.47-linux-amd64",
                "1.5.46-linux-amd64.debug",
                "1.5.47.debug",  # 1.5.debug names no debug release: from the newest
                "1.5",
                "1.5-linux-amd64",
                "1.5.debug",
            ],
        ),
        (
            Scope(versions=versions("1.5.45")),
            [
                "1.5.45",
                "1.5.46",
                "1.5.45-linux-amd64",
                "1.5.46-linux-amd64",
                "1.5.47-linux-amd64",
                "1.5",
                "1.5-linux-amd64",
                "1.5.47.debug",  # 1.5.debug names no debug release: from the newest
                "1.5.debug",
            ],
        ),
    ],
)
def test_variants_do_not_mix(scope: Scope, expected: list[str]) -> None:
    assert sorted(scope.narrow(PER_ARCH)) == sorted(expected)
    assert scope.narrow(PER_ARCH) == [tag for tag in PER_ARCH if tag in expected]


# --- union --------------------------------------------------------------------------


def test_union_of_tag_criteria_and_repositories() -> None:
    a = Scope(frozenset({AGENT}), versions=versions("1.5.45"))
    b = Scope(frozenset({HUB}), lines=lines("1.6"), tags=tags("1.5"))
    assert a | b == Scope(frozenset({AGENT, HUB}), versions("1.5.45"), lines("1.6"), tags("1.5"))
    assert b | a == a | b


def test_union_joins_the_same_criterion() -> None:
    a = Scope(versions=versions("1.5.45"))
    b = Scope(versions=versions("1.6.1"))
    assert a | b == Scope(versions=versions("1.5.45", "1.6.1"))


@pytest.mark.parametrize(
    "other",
    [
        Scope(versions=versions("1.5.45")),
        Scope(frozenset({AGENT}), tags=tags("1.5")),
        EVERYTHING,
    ],
)
def test_everything_absorbs(other: Scope) -> None:
    assert EVERYTHING | other == EVERYTHING
    assert other | EVERYTHING == EVERYTHING


def test_every_tag_of_some_repositories_absorbs_the_tag_criteria() -> None:
    every_agent = Scope(frozenset({AGENT}))
    release_hub = Scope(frozenset({HUB}), versions=versions("1.5.45"))
    assert every_agent | release_hub == Scope(frozenset({AGENT, HUB}))
    assert (every_agent | release_hub).every_tag


def test_all_repositories_absorb_some() -> None:
    everywhere = Scope(versions=versions("1.5.45"))
    agent = Scope(frozenset({AGENT}), versions=versions("1.6.1"))
    assert everywhere | agent == Scope(None, versions("1.5.45", "1.6.1"))
    assert agent | everywhere == Scope(None, versions("1.5.45", "1.6.1"))


# --- to_json / from_json, repositories_of, str -------------------------------------


@pytest.mark.parametrize(
    ("scope", "data"),
    [
        (EVERYTHING, {"repositories": None, "versions": None, "lines": None, "tags": None}),
        (
            Scope(
                frozenset({HUB, AGENT}),
                versions("1.5.45", "1.6.0-rc.1"),
                lines("1.6", "1.5"),
                tags("1.5", "latest"),
            ),
            {
                "repositories": [AGENT, HUB],
                "versions": ["1.5.45", "1.6.0-rc.1"],
                "lines": ["1.5", "1.6"],
                "tags": ["1.5", "latest"],
            },
        ),
        (
            Scope(frozenset({AGENT}), tags=tags("1.5")),
            {"repositories": [AGENT], "versions": None, "lines": None, "tags": ["1.5"]},
        ),
    ],
)
def test_json_round_trip(scope: Scope, data: dict[str, list[str] | None]) -> None:
    assert scope.to_json() == data
    assert Scope.from_json(data) == scope
    assert Scope.from_json(scope.to_json()).to_json() == data


def test_from_json_keeps_a_candidates_spelling() -> None:
    scope = Scope.from_json({"versions": ["1.6.0-rc.1"]})
    assert scope == Scope(versions=versions("1.6.0-rc1"))
    assert scope.to_json()["versions"] == ["1.6.0-rc.1"]
    assert scope.repositories is None and scope.lines is None and scope.tags is None


def test_from_json_refuses_what_does_not_parse() -> None:
    with pytest.raises(ValueError, match="not an IoT Edge version"):
        Scope.from_json({"versions": ["1.5"]})
    with pytest.raises(ValueError, match="not a release line"):
        Scope.from_json({"lines": ["1.x"]})


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (EVERYTHING, ["c", "a", "b"]),
        (Scope(frozenset({"a"})), ["a"]),
        (Scope(frozenset({"b", "c"}), tags=tags("1.5")), ["c", "b"]),
        (Scope(frozenset({"z"})), []),
    ],
)
def test_repositories_of(scope: Scope, expected: list[str]) -> None:
    assert scope.repositories_of(["c", "a", "b"]) == expected


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        (EVERYTHING, "every tag"),
        (Scope(frozenset({HUB, AGENT})), f"every tag of {AGENT}, {HUB}"),
        (Scope(versions=versions("1.5.10", "1.5.9")), "1.5.9, 1.5.10"),
        (
            Scope(frozenset({HUB}), versions("1.5.45"), lines("1.6")),
            f"1.5.45, line 1.6 of {HUB}",
        ),
        (Scope(tags=tags("latest", "1.5")), "1.5, latest"),
        (
            Scope(None, versions("1.6.0-rc.1"), lines("1.5"), tags("1.6")),
            "1.6.0-rc.1, line 1.5, 1.6",
        ),
    ],
)
def test_str(scope: Scope, text: str) -> None:
    assert str(scope) == text

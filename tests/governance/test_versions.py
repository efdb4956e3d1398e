"""The IoT Edge tag grammar, ordering and ranges, over hand-written cases and real history."""

from __future__ import annotations

import itertools
import json
import re
from datetime import date
from pathlib import Path

import pytest

from mirror.governance.versions import (
    Line,
    Tag,
    TagKind,
    Version,
    VersionRange,
    parse_tag,
    sort_tags,
)

DATA = Path(__file__).parents[1] / "data" / "governance"


def history_versions(*repositories: str) -> set[str]:
    history = json.loads((DATA / "image-versions-history.json").read_text())
    return {entry["version"] for repo in repositories for entry in history[repo]["versions"]}


def changelog_releases() -> list[tuple[str, dict[str, object]]]:
    releases: list[tuple[str, dict[str, object]]] = json.loads(
        (DATA / "releases-from-changelogs.json").read_text()
    )
    return releases


# text, kind, numbers, rc, line, arch, debug
PARSE_CASES: list[
    tuple[str, TagKind, tuple[int, ...] | None, int | None, str | None, str | None, bool]
] = [
    ("1.5.3", TagKind.SPECIFIC, (1, 5, 3), None, "1.5", None, False),
    ("1.0.9.4", TagKind.SPECIFIC, (1, 0, 9, 4), None, "1.0", None, False),
    ("1.5", TagKind.ROLLING, None, None, "1.5", None, False),
    ("1.10", TagKind.ROLLING, None, None, "1.10", None, False),
    ("1.0.10-rc2", TagKind.SPECIFIC, (1, 0, 10), 2, "1.0", None, False),
    ("1.6.0-rc.1", TagKind.SPECIFIC, (1, 6, 0), 1, "1.6", None, False),
    ("1.5.3-linux-amd64", TagKind.SPECIFIC, (1, 5, 3), None, "1.5", "linux-amd64", False),
    ("1.5.3-linux-arm32v7", TagKind.SPECIFIC, (1, 5, 3), None, "1.5", "linux-arm32v7", False),
    ("1.5.3-linux-arm64v8", TagKind.SPECIFIC, (1, 5, 3), None, "1.5", "linux-arm64v8", False),
    ("1.1.0-windows-amd64", TagKind.SPECIFIC, (1, 1, 0), None, "1.1", "windows-amd64", False),
    ("1.5.3-windows-arm64v8", TagKind.SPECIFIC, (1, 5, 3), None, "1.5", "windows-arm64v8", False),
    ("1.0.9.4-linux-amd64", TagKind.SPECIFIC, (1, 0, 9, 4), None, "1.0", "linux-amd64", False),
    ("1.2.0-rc4-linux-arm32v7", TagKind.SPECIFIC, (1, 2, 0), 4, "1.2", "linux-arm32v7", False),
    ("1.5-linux-amd64", TagKind.ROLLING, None, None, "1.5", "linux-amd64", False),
    ("1.5.3.debug", TagKind.SPECIFIC, (1, 5, 3), None, "1.5", None, True),
    ("1.0.8-linux-amd64.debug", TagKind.SPECIFIC, (1, 0, 8), None, "1.0", "linux-amd64", True),
    ("latest", TagKind.OTHER, None, None, None, None, False),
    ("1", TagKind.OTHER, None, None, None, None, False),
    ("1.5.3.4.5", TagKind.OTHER, None, None, None, None, False),
    ("1.5-rc1", TagKind.OTHER, None, None, None, None, False),
    ("1.05.3", TagKind.OTHER, None, None, None, None, False),
    ("v1.5.3", TagKind.OTHER, None, None, None, None, False),
    ("1.5.3-linux-s390x", TagKind.OTHER, None, None, None, None, False),
    ("1.5.3-beta1", TagKind.OTHER, None, None, None, None, False),
    ("1.5.3-rebuild-20260901", TagKind.OTHER, None, None, None, None, False),
    ("1.5.3-linux-amd64-rc1", TagKind.OTHER, None, None, None, None, False),
    ("main", TagKind.OTHER, None, None, None, None, False),
    ("", TagKind.OTHER, None, None, None, None, False),
]


@pytest.mark.parametrize(("text", "kind", "numbers", "rc", "line", "arch", "debug"), PARSE_CASES)
def test_parse_tag(
    text: str,
    kind: TagKind,
    numbers: tuple[int, ...] | None,
    rc: int | None,
    line: str | None,
    arch: str | None,
    debug: bool,
) -> None:
    tag = parse_tag(text)
    assert tag.text == text
    assert tag.kind is kind
    assert (tag.version.numbers if tag.version else None) == numbers
    assert (tag.version.prerelease if tag.version else None) == rc
    assert (str(tag.line) if tag.line else None) == line
    assert tag.arch == arch
    assert tag.debug is debug
    assert tag.prerelease is (rc is not None)
    assert tag.per_arch is (arch is not None)


def test_version_text_drops_the_suffixes() -> None:
    version = parse_tag("1.6.0-rc.1-linux-amd64.debug").version
    assert version is not None
    assert str(version) == "1.6.0-rc.1"


def test_latest_is_recognised_but_of_no_class() -> None:
    latest, other = parse_tag("latest"), parse_tag("nightly")
    assert latest.is_latest
    assert latest.recognised
    assert latest.kind is TagKind.OTHER
    assert not other.is_latest
    assert not other.recognised


def test_both_candidate_spellings_are_the_same_version() -> None:
    assert Version.parse("1.6.0-rc1") == Version.parse("1.6.0-rc.1")
    assert hash(Version.parse("1.6.0-rc1")) == hash(Version.parse("1.6.0-rc.1"))


@pytest.mark.parametrize(
    "text", ["1.5", "1.5.3.4.5", "1.5.3-rc", "1.5.3-linux-amd64", "latest", "01.5.3"]
)
def test_version_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not an IoT Edge version"):
        Version.parse(text)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.5.2", "1.5.3"),
        ("1.5.9", "1.5.10"),
        ("1.4.43", "1.5.0"),
        ("1.0.9", "1.0.9.4"),
        ("1.0.9.4", "1.0.10"),
        ("1.0.10.1", "1.0.10.4"),
        ("1.0.10-rc1", "1.0.10-rc2"),
        ("1.0.10-rc2", "1.0.10"),
        ("1.0.10", "1.0.10.1"),
        ("1.0.8", "1.0.10-rc1"),
        ("1.2.0-rc4", "1.2.0"),
        ("1.1.19", "1.2.0-rc1"),
        ("1.5.44", "1.6.0-rc.1"),
        ("1.6.0-rc.1", "1.6.0"),
        ("1.6.0-rc.9", "1.6.0-rc.10"),
        ("1.9.0", "1.10.0"),
    ],
)
def test_version_order(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)
    assert Version.parse(higher) > Version.parse(lower)


def test_sort_tags_puts_rolling_after_its_line_and_others_last() -> None:
    texts = ["latest", "1.6", "1.5.10", "1.6.0", "1.5", "1.5.9", "1.5.9-linux-amd64", "1.4.43"]
    ordered = [tag.text for tag in sort_tags([parse_tag(t) for t in texts])]
    assert ordered == [
        "1.4.43",
        "1.5.9",
        "1.5.9-linux-amd64",
        "1.5.10",
        "1.5",
        "1.6.0",
        "1.6",
        "latest",
    ]


def test_line_parse_and_order() -> None:
    assert Line.parse("1.10") == Line(1, 10)
    assert str(Line(1, 5)) == "1.5"
    assert Line(1, 9) < Line(1, 10) < Line(2, 0)
    with pytest.raises(ValueError, match="not a release line"):
        Line.parse("1.5.3")


# --- the real history -----------------------------------------------------------------


def expected_shape(text: str) -> tuple[str, int, bool]:
    """Line, count of numbers and pre-release flag, read from the text by hand."""
    release = text.split("-", maxsplit=1)[0]
    numbers = release.split(".")
    return ".".join(numbers[:2]), len(numbers), "-rc" in text


REAL_VERSIONS = sorted(
    history_versions("azureiotedge-agent", "azureiotedge-hub")
    | {version for version, _ in changelog_releases()}
)


@pytest.mark.parametrize("text", REAL_VERSIONS)
def test_every_released_version_is_a_specific_tag(text: str) -> None:
    line, count, prerelease = expected_shape(text)
    tag = parse_tag(text)
    assert tag.kind is TagKind.SPECIFIC
    assert str(tag.line) == line
    assert tag.version is not None
    assert len(tag.version.numbers) == count
    assert tag.prerelease is prerelease
    assert not tag.per_arch
    assert not tag.debug
    assert parse_tag(f"{text}-linux-arm32v7").version == tag.version
    assert parse_tag(line).kind is TagKind.ROLLING


def test_the_history_holds_every_shape() -> None:
    shapes = {expected_shape(text)[1:] for text in REAL_VERSIONS}
    assert shapes == {(3, False), (4, False), (3, True)}
    assert {t for t in REAL_VERSIONS if "-rc" in t} >= {"1.0.10-rc1", "1.2.0-rc4", "1.6.0-rc.1"}


def changelog_date(text: str) -> date:
    """The changelogs' dates as written (`2021-04-9`, `2026/06/10`, `2022-12-13-2022`)."""
    match = re.match(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", text)
    assert match, text
    return date(int(match[1]), int(match[2]), int(match[3]))


def test_version_order_matches_release_dates_within_each_line() -> None:
    by_line: dict[str, list[tuple[Version, date, str]]] = {}
    for text, info in changelog_releases():
        version = Version.parse(text)
        by_line.setdefault(str(version.line), []).append(
            (version, changelog_date(str(info["date"])), text)
        )
    assert len(by_line) == 7
    for line, releases in by_line.items():
        ordered = sorted(releases)
        for (_, earlier, a), (_, later, b) in itertools.pairwise(ordered):
            assert earlier <= later, f"line {line}: {a} sorts before {b} but came out later"


def test_version_order_matches_first_seen_dates_within_each_line() -> None:
    history = json.loads((DATA / "image-versions-history.json").read_text())
    for repository in ("azureiotedge-agent", "azureiotedge-hub"):
        seen = [
            (Version.parse(e["version"]), e["first_seen"]) for e in history[repository]["versions"]
        ]
        for line in {version.line for version, _ in seen}:
            in_line = sorted((v, day) for v, day in seen if v.line == line)
            days = [day for _, day in in_line]
            assert days == sorted(days), f"{repository} line {line}"


def test_sorting_a_known_stretch_of_the_1_0_era() -> None:
    texts = ["1.0.10.1", "1.0.10", "1.0.9", "1.0.10-rc2", "1.1.0", "1.0.10-rc1", "1.0.9.4"]
    ordered = sorted(texts, key=Version.parse)
    assert ordered == [
        "1.0.9",
        "1.0.9.4",
        "1.0.10-rc1",
        "1.0.10-rc2",
        "1.0.10",
        "1.0.10.1",
        "1.1.0",
    ]


# --- ranges ---------------------------------------------------------------------------

RANGE_CASES: list[tuple[str, str, bool]] = [
    (">=1.5,<1.7", "1.5.0", True),
    (">=1.5,<1.7", "1.5.0-rc1", True),
    (">=1.5,<1.7", "1.6.1", True),
    (">=1.5,<1.7", "1.7.0-rc1", False),
    (">=1.5,<1.7", "1.4.43", False),
    (" >= 1.5 , < 1.7 ", "1.5.44", True),
    ("1.5.*", "1.5.44", True),
    ("1.5.*", "1.5.0-rc.1", True),
    ("1.5.*", "1.50.0", False),
    ("1.5", "1.5.3", True),
    ("==1.5", "1.6.0", False),
    ("!=1.5.*", "1.5.3", False),
    ("!=1.5.*", "1.6.0", True),
    ("1.*", "1.0.9.4", True),
    ("1.*", "2.0.0", False),
    (">1.5", "1.5.44", False),
    (">1.5", "1.6.0-rc.1", True),
    ("<=1.6", "1.6.9", True),
    (">=1.5.3", "1.5.3-rc1", False),
    (">=1.5.3", "1.5.3", True),
    ("<1.5.3", "1.5.3-rc.1", True),
    ("==1.0.9", "1.0.9.4", False),
    ("<1.0.9.4", "1.0.9", True),
    (">1.0.9.4", "1.0.10-rc1", True),
    ("1.0.9.*", "1.0.9.4", True),
    ("!=1.5.3", "1.5.3", False),
    ("==1.6.0-rc.1", "1.6.0-rc1", True),
    (">=1.6.0-rc.2", "1.6.0-rc.1", False),
    ("*", "0.0.1", True),
]


@pytest.mark.parametrize(("text", "version", "expected"), RANGE_CASES)
def test_range_contains(text: str, version: str, expected: bool) -> None:
    assert (Version.parse(version) in VersionRange.parse(text)) is expected


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (">=1.5,<1.7", "1.4", False),
        (">=1.5,<1.7", "1.5", True),
        (">=1.5,<1.7", "1.7", False),
        (">=1.5.3", "1.5", True),
        (">=1.5.3", "1.4", False),
        ("<=1.5.3", "1.6", False),
        ("1.5.*", "1.5", True),
        ("1.5.*", "1.6", False),
        ("==1.5.3", "1.5", True),
        ("!=1.5.3", "1.5", True),
        ("!=1.5.*", "1.5", False),
        ("1.*", "1.6", True),
        ("*", "1.0", True),
    ],
)
def test_range_admits_line(text: str, line: str, expected: bool) -> None:
    assert VersionRange.parse(text).admits_line(Line.parse(line)) is expected


def test_range_admits_tags_by_class() -> None:
    versions = VersionRange.parse(">=1.5")
    assert versions.admits(parse_tag("1.5.3-linux-amd64"))
    assert versions.admits(parse_tag("1.6"))
    assert not versions.admits(parse_tag("1.4"))
    assert not versions.admits(parse_tag("latest"))
    assert "1.5.3" not in versions


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a version range clause: ''"),
        (">=1.5,", "not a version range clause: ''"),
        ("<<1.7", "not a version range clause: '<<1.7'"),
        ("~1.5", "not a version range clause"),
        (">=1.5.*", "a wildcard goes with == or !="),
        ("1.5-rc1", "a release candidate needs X.Y.Z"),
        ("1.0.9.4.*", "nothing follows a four-part version"),
        ("1.5.x", "not a version range clause"),
        ("*,>=1.5", "not a version range clause: '*'"),
    ],
)
def test_range_errors(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        VersionRange.parse(text)


def test_values_are_frozen() -> None:
    tag = parse_tag("1.5.3")
    with pytest.raises(AttributeError):
        tag.text = "1.5.4"  # type: ignore[misc]
    assert isinstance(tag, Tag)


# --- one grammar, every reader ---------------------------------------------------------

EDGE_CASES = ["1.5.3-windows-arm64v8", "1.5.3.debug", "1.5-rc1", "1.5-linux-arm32v7", "latest"]


def every_known_tag() -> list[str]:
    history = json.loads((DATA / "image-versions-history.json").read_text())
    feed = json.loads((DATA / "product-versions.json").read_text())
    texts = {entry["version"] for repo in history.values() for entry in repo["versions"]}
    texts |= {version for version, _ in changelog_releases()}
    texts |= {
        component["version"]
        for channel in feed["channels"]
        for product in channel["products"]
        for component in product["components"]
    }
    return sorted(texts) + EDGE_CASES


@pytest.mark.parametrize("text", every_known_tag())
def test_every_reader_of_tags_agrees_with_the_grammar(text: str) -> None:
    """Policy, lint's runtime catalog, rewrite's pins and the registry's pin candidates
    all read a tag through `parse_tag`, so they classify it the same way."""
    from mirror.deployment.lookups import specific_candidates
    from mirror.deployment.runtime import DEFAULT_CATALOG
    from mirror.governance.policy import evaluate, parse_policy

    tag = parse_tag(text)
    policy = parse_policy(
        "version: 1\nrules:\n- repositories: [r]\n  lines: ['1.0', '1.1', '1.2', '1.3', '1.4',"
        " '1.5', '1.6']\n  prereleases: true\n  per_architecture: true\n"
    )
    (verdict,) = evaluate(policy, "r", [text])
    assert verdict.kind is tag.kind
    assert verdict.selected is (tag.kind is not TagKind.OTHER and not tag.debug)
    if tag.kind is not TagKind.OTHER:
        assert DEFAULT_CATALOG.assess(tag).message
    assert tag.names_release is (tag.kind is TagKind.SPECIFIC or text.startswith("v"))
    candidates = specific_candidates(text, [text, "1.5.3", "1.5.4-linux-amd64"])
    if tag.kind is TagKind.SPECIFIC:
        assert candidates == []
    elif tag.kind is TagKind.ROLLING:
        assert all(
            parse_tag(c).line == tag.line and parse_tag(c).arch == tag.arch for c in candidates
        )
    else:
        assert candidates == ["1.5.4-linux-amd64", "1.5.3"]

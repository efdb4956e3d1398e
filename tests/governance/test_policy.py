"""Tag policies: loading and its errors, evaluation over the real history."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mirror.errors import ConfigError
from mirror.governance.decide import OnRebuild
from mirror.governance.policy import (
    Policy,
    evaluate,
    load_policies,
    load_policy,
    parse_lines,
    parse_policy,
    selected,
)
from mirror.governance.releases import load_feed, parse_feed
from mirror.governance.selection import Verdict
from mirror.governance.versions import Line, TagKind, parse_tag

DATA = Path(__file__).parents[1] / "data" / "governance"
POLICIES = Path(__file__).parents[2] / "policies"
DEFAULT = POLICIES / "iotedge-runtime.yaml"
LINUX = ("linux-amd64", "linux-arm32v7", "linux-arm64v8")


def default_policy() -> Policy:
    return load_policy(DEFAULT)


def released_versions(repository: str) -> set[str]:
    """Versions seen in the feed since 2022-10, plus the changelogs' releases before it."""
    history = json.loads((DATA / "image-versions-history.json").read_text())
    seen = {entry["version"] for entry in history[repository]["versions"]}
    changelogs = json.loads((DATA / "releases-from-changelogs.json").read_text())
    earlier = {version for version, info in changelogs if info["date"] < "2022-10"}
    return seen | earlier


def upstream_tags(repository: str) -> list[str]:
    """What the registry lists: each version, its per-arch copies, and the rolling tags."""
    tags: set[str] = set()
    for version in released_versions(repository):
        line = ".".join(version.split("-")[0].split(".")[:2])
        arches = (*LINUX, "windows-amd64") if line in ("1.0", "1.1") else LINUX
        tags |= (
            {version, line} | {f"{version}-{a}" for a in arches} | {f"{line}-{a}" for a in arches}
        )
    return sorted(tags)


def verdicts_by_tag(verdicts: tuple[Verdict, ...]) -> dict[str, Verdict]:
    return {verdict.tag: verdict for verdict in verdicts}


# --- the default policy over the real history -----------------------------------------


@pytest.mark.parametrize("repository", ["azureiotedge-agent", "azureiotedge-hub"])
def test_default_policy_selects_the_current_lines(repository: str) -> None:
    tags = upstream_tags(repository)
    verdicts = evaluate(default_policy(), repository, tags)
    chosen = {verdict.tag for verdict in selected(verdicts)}
    expected = {tag for tag in tags if re.fullmatch(r"1\.[56](\.[0-9]+)?", tag)}
    assert chosen == expected
    assert len([t for t in chosen if t.startswith("1.5.")]) == 43  # 1.5.0-1.5.44 but 8, 13
    assert {t for t in chosen if t.startswith("1.6")} == {"1.6", "1.6.0", "1.6.1"}
    assert {"1.5.8", "1.5.13"}.isdisjoint(chosen)  # daemon-only releases: no image
    assert len(verdicts) == len(tags)


@pytest.mark.parametrize("repository", ["azureiotedge-agent", "azureiotedge-hub"])
def test_default_policy_classifies_every_tag(repository: str) -> None:
    for verdict in evaluate(default_policy(), repository, upstream_tags(repository)):
        release = verdict.tag.split("-")[0]
        expected = TagKind.ROLLING if release.count(".") == 1 else TagKind.SPECIFIC
        assert verdict.kind is expected, verdict.tag
        if verdict.selected:
            assert verdict.reason == f"select: {expected}"


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("1.5.44", "select: specific"),
        ("1.5.0", "select: specific"),
        ("1.6.1", "select: specific"),
        ("1.5", "select: rolling"),
        ("1.6", "select: rolling"),
        ("1.6.0-rc.1", "skip: pre-release"),
        ("1.6.0-rc.1-linux-amd64", "skip: pre-release"),
        ("1.0.10-rc2", "skip: pre-release"),
        ("1.5.44-linux-arm64v8", "skip: per-architecture tag"),
        ("1.5-linux-amd64", "skip: per-architecture tag"),
        ("1.1.0-windows-amd64", "skip: per-architecture tag"),
        ("1.4.43", "skip: line 1.4 out of range"),
        ("1.4", "skip: line 1.4 out of range"),
        ("1.0.10.4", "skip: line 1.0 out of range"),
        ("1.1.19", "skip: line 1.1 out of range"),
        ("1.2.0-rc4", "skip: pre-release"),
    ],
)
def test_default_policy_reasons(tag: str, reason: str) -> None:
    tags = upstream_tags("azureiotedge-agent")
    assert tag in tags
    verdict = verdicts_by_tag(evaluate(default_policy(), "azureiotedge-agent", tags))[tag]
    assert verdict.reason == reason
    assert verdict.selected is reason.startswith("select")


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("latest", "skip: latest is not mirrored"),
        ("1.5.3.debug", "skip: debug image"),
        ("1.5.3-linux-amd64.debug", "skip: debug image"),
        ("nightly", "skip: unrecognised tag"),
        ("1.5.3-rebuild-20260901", "skip: unrecognised tag"),
    ],
)
def test_default_policy_never_mirrors(tag: str, reason: str) -> None:
    (verdict,) = evaluate(default_policy(), "azureiotedge-hub", [tag])
    assert (verdict.selected, verdict.reason) == (False, reason)


def test_diagnostics_follows_the_daemon_lines() -> None:
    history = json.loads((DATA / "image-versions-history.json").read_text())
    tags = [entry["version"] for entry in history["azureiotedge-diagnostics"]["versions"]]
    verdicts = evaluate(default_policy(), "azureiotedge-diagnostics", [*tags, "1.5", "1.6"])
    chosen = " ".join(v.tag for v in selected(verdicts))
    assert chosen == "1.5.0 1.5.7 1.5.8 1.5.10 1.5.13 1.5.16 1.5.21 1.5 1.6.0 1.6"


def test_a_verdict_carries_the_tag_its_class_and_the_parse() -> None:
    (verdict,) = evaluate(default_policy(), "azureiotedge-agent", ["1.5.44"])
    assert verdict == Verdict(
        "1.5.44", True, "select: specific", TagKind.SPECIFIC, parse_tag("1.5.44")
    )
    assert verdict.kind == "specific"


def test_verdicts_come_in_version_order_without_duplicates() -> None:
    verdicts = evaluate(default_policy(), "azureiotedge-agent", ["1.6", "1.5.10", "1.5.9", "1.5.9"])
    assert [v.tag for v in verdicts] == ["1.5.9", "1.5.10", "1.6"]


def test_a_repository_without_a_rule_is_skipped() -> None:
    verdicts = evaluate(default_policy(), "azureiotedge-api-proxy", ["1.1.27"])
    assert [(v.selected, v.reason) for v in verdicts] == [
        (False, "skip: no policy rule for azureiotedge-api-proxy")
    ]


# --- the lines setting ----------------------------------------------------------------


def test_lines_setting_overrides_the_feed() -> None:
    tags = upstream_tags("azureiotedge-agent")
    verdicts = evaluate(default_policy(), "azureiotedge-agent", tags, lines=parse_lines("1.6"))
    assert {v.tag for v in selected(verdicts)} == {"1.6", "1.6.0", "1.6.1"}
    assert verdicts_by_tag(verdicts)["1.5.44"].reason == "skip: line 1.5 out of range"


def test_a_fetched_feed_decides_the_lines() -> None:
    data = json.loads((DATA / "product-versions.json").read_text())
    data["channels"][1]["products"].pop()  # 1.5 leaves the feed
    verdicts = evaluate(
        default_policy(), "azureiotedge-agent", ["1.5.44", "1.6.1"], feed=parse_feed(data)
    )
    assert [(v.tag, v.selected) for v in verdicts] == [("1.5.44", False), ("1.6.1", True)]


def test_lines_in_the_policy_file() -> None:
    policy = parse_policy(
        "version: 1\nrules:\n  - repositories: [azureiotedge-agent]\n    lines: [1.4, 1.10]\n"
    )
    verdicts = evaluate(policy, "azureiotedge-agent", ["1.4.43", "1.10.0", "1.1.0", "1.5.44"])
    assert [v.tag for v in selected(verdicts)] == ["1.4.43", "1.10.0"]


def test_a_repository_the_feed_does_not_know_needs_lines() -> None:
    policy = parse_policy("version: 1\nrules:\n  - repositories: [my/sensor]\n")
    with pytest.raises(ConfigError, match=r"lists no current line for my/sensor; set `lines`"):
        evaluate(policy, "my/sensor", ["1.0.0"], feed=load_feed(DATA / "product-versions.json"))


def test_parse_lines_refuses_a_version() -> None:
    assert parse_lines("1.5, 1.6") == {Line(1, 5), Line(1, 6)}
    with pytest.raises(ConfigError, match="not a release line"):
        parse_lines("1.5.3")


# --- policy features ------------------------------------------------------------------

RULE = (
    "version: 1\nrules:\n  - repositories: [azureiotedge-agent]\n    lines: ['1.4', '1.5', '1.6']\n"
)


def run(extra: str, tags: list[str]) -> dict[str, str]:
    policy = parse_policy(RULE + extra)
    return {v.tag: v.reason for v in evaluate(policy, "azureiotedge-agent", tags)}


def test_keep_newest_per_line() -> None:
    tags = ["1.4.42", "1.4.43", "1.5.42", "1.5.43", "1.5.44", "1.5.44-linux-amd64", "1.5", "1.6.0"]
    reasons = run("    keep_newest: 2\n    per_architecture: true\n", tags)
    assert reasons == {
        "1.4.42": "select: specific",
        "1.4.43": "select: specific",
        "1.5.42": "skip: older than the newest 2 of line 1.5",
        "1.5.43": "select: specific",
        "1.5.44": "select: specific",
        "1.5.44-linux-amd64": "select: specific",
        "1.5": "select: rolling",
        "1.6.0": "select: specific",
    }


def test_keep_newest_counts_only_what_passed_the_other_checks() -> None:
    reasons = run("    keep_newest: 1\n", ["1.6.0", "1.6.1-rc.1", "1.6.1-linux-amd64"])
    assert reasons["1.6.0"] == "select: specific"


def test_prereleases_and_per_architecture_included() -> None:
    tags = ["1.6.0-rc.1", "1.6.0-rc1-linux-amd64", "1.5-linux-arm32v7"]
    reasons = run("    prereleases: true\n    per_architecture: true\n", tags)
    assert set(reasons.values()) == {"select: specific", "select: rolling"}


def test_allow_and_deny_match_the_whole_tag() -> None:
    tags = ["1.5.3", "1.5.30", "1.5.4", "1.6.0"]
    reasons = run("    allow: ['1\\.5\\.3.*', '1\\.6\\..*']\n    deny: ['1\\.5\\.3']\n", tags)
    assert reasons == {
        "1.5.3": "skip: denied by '1\\\\.5\\\\.3'",
        "1.5.30": "select: specific",
        "1.5.4": "skip: matches no allow pattern",
        "1.6.0": "select: specific",
    }


def test_version_range() -> None:
    tags = ["1.4.43", "1.4", "1.5.2", "1.5.3", "1.5", "1.6.0"]
    reasons = run("    versions: '>=1.5.3,<1.6'\n", tags)
    assert reasons == {
        "1.4.43": "skip: 1.4.43 outside versions >=1.5.3,<1.6",
        "1.4": "skip: line 1.4 outside versions >=1.5.3,<1.6",
        "1.5.2": "skip: 1.5.2 outside versions >=1.5.3,<1.6",
        "1.5.3": "select: specific",
        "1.5": "select: rolling",
        "1.6.0": "skip: 1.6.0 outside versions >=1.5.3,<1.6",
    }


def test_kinds() -> None:
    reasons = run("    kinds: [specific]\n", ["1.5", "1.5.3"])
    assert reasons == {"1.5": "skip: rolling tags are not mirrored", "1.5.3": "select: specific"}


# --- loading and its errors -----------------------------------------------------------


def test_the_shipped_policy() -> None:
    policy = default_policy()
    (rule,) = policy.rules
    assert policy.repositories == (
        "azureiotedge-agent",
        "azureiotedge-hub",
        "azureiotedge-simulated-temperature-sensor",
        "azureiotedge-diagnostics",
    )
    assert rule.lines is None  # from the feed
    assert rule.kinds == ("specific", "rolling")
    assert (rule.prereleases, rule.per_architecture, rule.keep_newest) == (False, False, None)
    assert rule.on_rebuild is OnRebuild.MIRROR_AS_DERIVED_TAG
    assert load_policies(POLICIES) == {"iotedge-runtime": policy}


def test_patterns_and_ranges_are_compiled_at_load() -> None:
    policy = parse_policy(RULE + "    deny: ['1\\.5\\..*']\n    versions: '>=1.5'\n")
    rule = policy.rules[0]
    assert isinstance(rule.deny[0], re.Pattern)
    assert rule.versions is not None
    assert rule.versions.clauses


HEAD = "version: 1\nrules:\n  - repositories: [azureiotedge-agent]\n"

MALFORMED = [
    (
        "bad YAML",
        HEAD + "    lines: [1.5\n",
        "4: not valid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        "tab",
        "version: 1\nrules:\n\t- x\n",
        "3: not valid YAML: found character '\\t' that cannot start any token",
    ),
    (
        "unquoted range",
        HEAD + "    versions: >=1.5\n",
        "4: not valid YAML: expected chomping or indentation indicators, but found '=' "
        "(quote values that start with > or |, such as '>=1.5')",
    ),
    (
        "unknown key",
        HEAD + "    keep_newset: 3\n",
        "4: rules[0].keep_newset: unknown key (did you mean keep_newest?)",
    ),
    (
        "unknown top-level key",
        "version: 1\nrulez: []\n",
        "2: rulez: unknown key (did you mean rules?)",
    ),
    (
        "unknown key, no guess",
        HEAD + "    colour: blue\n",
        "4: rules[0].colour: unknown key (expected one of: repositories, lines, versions, kinds, "
        "prereleases, per_architecture, keep_newest, allow, deny, on_rebuild, referrers, "
        "artifact_types, provenance)",
    ),
    (
        "bad regex",
        HEAD + "    deny:\n      - 'ok'\n      - '(unclosed'\n",
        "6: rules[0].deny[1]: not a valid regular expression '(unclosed': "
        "missing ), unterminated subpattern at position 0",
    ),
    (
        "bad range",
        HEAD + "    versions: '>=1.5,<<1.7'\n",
        "4: rules[0].versions: not a version range clause: '<<1.7'",
    ),
    (
        "range not a string",
        HEAD + "    versions: 1\n",
        "4: rules[0].versions: must be a version range such as '>=1.5,<1.7' (a string)",
    ),
    (
        "wrong type",
        HEAD + "    keep_newest: three\n",
        "4: rules[0].keep_newest: must be a valid integer",
    ),
    ("out of bounds", HEAD + "    keep_newest: 0\n", "4: rules[0].keep_newest: must be >= 1"),
    (
        "not a bool",
        HEAD + "    prereleases: 'yes'\n",
        "4: rules[0].prereleases: must be a valid boolean",
    ),
    (
        "bad kind",
        HEAD + "    kinds: [specific, moving]\n",
        "4: rules[0].kinds[1]: must be 'specific' or 'rolling'",
    ),
    ("no kinds", HEAD + "    kinds: []\n", "4: rules[0].kinds: must not be empty"),
    (
        "bad on_rebuild",
        HEAD + "    on_rebuild: overwrite\n",
        "4: rules[0].on_rebuild: must be 'hold' or 'mirror-as-derived-tag'",
    ),
    (
        "bad lines",
        HEAD + "    lines: all\n",
        "4: rules[0].lines: must be 'feed' or a list of lines such as ['1.5', '1.6']",
    ),
    (
        "bad line",
        HEAD + "    lines: ['1.5.3']\n",
        "4: rules[0].lines: not a release line (X.Y): '1.5.3'",
    ),
    (
        "missing key",
        "version: 1\nrules:\n  - lines: feed\n",
        "3: rules[0].repositories: required key is missing",
    ),
    ("missing version", "rules:\n  - repositories: [a]\n", "1: version: required key is missing"),
    ("future version", "version: 2\nrules:\n  - repositories: [a]\n", "1: version: must be 1"),
    ("no rules", "version: 1\nrules: []\n", "2: rules: must not be empty"),
    ("rules not a list", "version: 1\nrules: 5\n", "2: rules: must be a list"),
    (
        "rule not a mapping",
        "version: 1\nrules:\n  - agent\n",
        "3: rules[0]: must be a mapping (key: value)",
    ),
    ("not a mapping", "- a\n", "1: (top level): must be a mapping (key: value)"),
    ("empty", "", "1: the policy file is empty"),
    (
        "control character",
        HEAD + "    description: \x01\n",
        "4: not valid YAML: special characters are not allowed",
    ),
    ("unhashable key", HEAD + "    ? [a]\n    : 1\n", "4: not valid YAML: found unhashable key"),
    (
        "bad repository",
        "version: 1\nrules:\n  - repositories: [Agent_]\n",
        "3: rules[0].repositories[0]: not a valid repository name: 'Agent_'",
    ),
    (
        "duplicate key",
        HEAD + "    lines: feed\n    lines: ['1.5']\n",
        "5: rules[0].lines: duplicate key",
    ),
    (
        "repository in two rules",
        HEAD + "  - repositories:\n      - azureiotedge-hub\n      - azureiotedge-agent\n",
        "6: rules[1].repositories[1]: azureiotedge-agent is already governed by rules[0]",
    ),
    (
        "python tag",
        "version: !!python/object:os.system 1\n",
        "1: not valid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "message"), MALFORMED, ids=[case[0] for case in MALFORMED]
)
def test_malformed_policy(case: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, "policies/broken.yaml")
    assert str(caught.value) == f"policies/broken.yaml:{message}"
    assert "\n" not in str(caught.value)


def test_load_policy_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(HEAD + "    keep_newest: 0\n")
    with pytest.raises(
        ConfigError, match=re.escape(f"{path}:4: rules[0].keep_newest: must be >= 1")
    ):
        load_policy(path)
    with pytest.raises(ConfigError, match=r"missing.yaml: cannot read the policy"):
        load_policy(tmp_path / "missing.yaml")

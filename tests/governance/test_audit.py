"""`mirror tags audit` as a library: each rule fires when it should and stays quiet
otherwise (tables over the pure `audit`), then `gather` against real registries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mirror.engine.gather import gather
from mirror.engine.sync import sync
from mirror.governance.audit import Recorded, RepositoryState, Severity, Violation, audit
from mirror.governance.policy import DEFAULT_POLICY, Policy, evaluate, load_policy, parse_policy
from mirror.governance.selection import Verdict
from mirror.governance.versions import Line
from mirror.ledger import Ledger
from mirror.transport.registry import RegistryClient
from tests.support.images import Seeder
from tests.support.registry import Registry
from tests.support.reporting import Quiet

AGENT = "azureiotedge-agent"
HUB = "azureiotedge-hub"
A, B, C, D = (f"sha256:{letter * 64}" for letter in "abcd")
DEFAULT = load_policy(DEFAULT_POLICY)
PER_ARCH = parse_policy(
    """
version: 1
rules:
  - repositories: [azureiotedge-agent]
    lines: ["1.5"]
    per_architecture: true
    prereleases: true
"""
)


def state(
    target: Mapping[str, str],
    upstream: Mapping[str, str] | None = None,
    *,
    recorded: Mapping[str, Recorded] | None = None,
    locked: Mapping[str, bool] | None = None,
    lines: Sequence[str] = ("1.5",),
    policy: Policy = DEFAULT,
    repository: str = AGENT,
) -> RepositoryState:
    upstream = dict(upstream or {})
    tags = sorted(set(target) | set(upstream))
    judged = evaluate(policy, repository, tags, lines=[Line.parse(line) for line in lines])
    verdicts = {verdict.tag: verdict for verdict in judged}
    return RepositoryState(
        repository, dict(target), upstream, verdicts, dict(recorded or {}), dict(locked or {})
    )


def found(*states: RepositoryState) -> list[tuple[str, str, Severity]]:
    return [(f.rule, f.tag, f.severity) for f in audit(states)]


def only(finding_state: RepositoryState) -> Violation:
    findings = audit([finding_state])
    assert len(findings) == 1, findings
    return findings[0]


# A mirror in order: two releases, 1.5 at the newest, all as recorded, all locked.
CLEAN_TARGET = {"1.5.1": A, "1.5.2": B, "1.5": B}
CLEAN_RECORDS = {tag: Recorded(digest, digest) for tag, digest in CLEAN_TARGET.items()}


def test_a_mirror_in_order_has_no_findings() -> None:
    clean = state(
        CLEAN_TARGET,
        {**CLEAN_TARGET, "latest": C, "1.5.2-linux-amd64": D},
        recorded=CLEAN_RECORDS,
        locked={"1.5.1": True, "1.5.2": True, "1.5": False},
    )
    assert found(clean) == []


# --- convention -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("latest", "latest is not mirrored"),
        ("1.5.2.debug", "debug image"),
        ("1.5.3-rc1", "pre-release"),
        ("1.5.2-linux-amd64", "per-architecture tag"),
        ("1.5-linux-arm64v8", "per-architecture tag"),
        ("nightly", "unrecognised tag"),
        ("1.2.0-rebuild-20260901", "unrecognised tag"),  # its original is not mirrored
    ],
)
def test_tags_the_policy_never_mirrors_break_the_convention(tag: str, reason: str) -> None:
    finding = only(state({tag: C}))
    assert (finding.rule, finding.severity, finding.tag) == ("convention", Severity.ERROR, tag)
    assert finding.message.startswith(reason)
    assert "delete it" in finding.message


@pytest.mark.parametrize("tag", ["1.5.2-linux-amd64", "1.5.3-rc1", "1.5-linux-arm64v8"])
def test_variants_the_policy_mirrors_follow_the_convention(tag: str) -> None:
    assert found(state({tag: C}, policy=PER_ARCH)) == []


def test_a_derived_tag_follows_the_convention_when_its_original_does() -> None:
    target = {"1.5.2": B, "1.5.2-rebuild-20260901": C}
    assert found(state(target, {"1.5.2": B})) == []


# --- out of policy --------------------------------------------------------------------


def test_a_tag_outside_the_policys_lines_is_a_warning() -> None:
    finding = only(state({"1.4.3": A}))
    assert (finding.rule, finding.severity) == ("out-of-policy", Severity.WARNING)
    assert "line 1.4 out of range" in finding.message


def test_a_tag_inside_the_policys_lines_is_not() -> None:
    assert found(state({"1.4.3": A}, lines=("1.4", "1.5"))) == []


def test_a_repository_the_policy_does_not_govern_is_out_of_policy() -> None:
    finding = only(state({"1.5.1": A}, repository="some-other-image"))
    assert finding.rule == "out-of-policy"
    assert "no policy rule" in finding.message


# --- unlocked -------------------------------------------------------------------------


def test_a_writable_specific_tag_is_an_error() -> None:
    finding = only(state({"1.5.2": B}, locked={"1.5.2": False}))
    assert (finding.rule, finding.severity) == ("unlocked", Severity.ERROR)
    assert "--write-enabled false" in finding.message


def test_a_writable_derived_tag_is_an_error_too() -> None:
    target = {"1.5.2": B, "1.5.2-rebuild-20260901": C}
    locks = {"1.5.2": True, "1.5.2-rebuild-20260901": False}
    assert found(state(target, {"1.5.2": B}, locked=locks)) == [
        ("unlocked", "1.5.2-rebuild-20260901", Severity.ERROR)
    ]


@pytest.mark.parametrize(
    "locked",
    [
        {"1.5.2": True},  # locked
        {},  # the registry cannot say (not ACR)
        {"1.5": False},  # a rolling tag must stay writable to move
    ],
)
def test_locks_stay_quiet_when_locked_unknown_or_rolling(locked: dict[str, bool]) -> None:
    assert found(state({"1.5.2": B, "1.5": B}, {"1.5.2": B, "1.5": B}, locked=locked)) == []


# --- rolling behind -------------------------------------------------------------------


def test_a_rolling_tag_behind_upstreams_newest_is_a_warning() -> None:
    upstream = {"1.5.1": A, "1.5.2": B, "1.5": B}
    finding = only(state({"1.5.1": A, "1.5": A}, upstream))
    assert (finding.rule, finding.severity, finding.tag) == (
        "rolling-behind",
        Severity.WARNING,
        "1.5",
    )
    assert "at 1.5.1" in finding.message
    assert "newest of line 1.5 is 1.5.2" in finding.message


def test_a_rolling_tag_on_unknown_content_is_behind_too() -> None:
    finding = only(state({"1.5": D}, {"1.5.2": B, "1.5": B}))
    assert finding.rule == "rolling-behind"
    assert "sha256:dddddddddddd" in finding.message


@pytest.mark.parametrize(
    "upstream",
    [
        {"1.5.1": A, "1.5": A},  # up to date
        {"1.5.2-linux-amd64": B},  # only another variant moved on
        {},  # upstream has nothing of the line
        {"1.5.0": C},  # upstream lost 1.5.1: the mirror is not behind
    ],
)
def test_rolling_behind_stays_quiet_otherwise(upstream: dict[str, str]) -> None:
    assert found(state({"1.5.1": A, "1.5": A}, upstream)) == []


# --- digests: tampered, drift, differs ------------------------------------------------


def test_a_tag_changed_since_mirror_recorded_it_is_tampered() -> None:
    recorded = {"1.5.2": Recorded(B, B)}
    finding = only(state({"1.5.2": C}, {"1.5.2": B}, recorded=recorded))
    assert (finding.rule, finding.severity) == ("tampered", Severity.ERROR)
    assert "sha256:cccccccccccc" in finding.message
    assert "sha256:bbbbbbbbbbbb" in finding.message


def test_a_rolling_tag_moved_outside_mirror_is_tampered() -> None:
    upstream = {"1.5.1": A, "1.5.2": B, "1.5": B}
    recorded = {"1.5": Recorded(B, B)}
    findings = found(state({"1.5.1": A, "1.5.2": B, "1.5": A}, upstream, recorded=recorded))
    assert ("tampered", "1.5", Severity.ERROR) in findings


def test_an_upstream_rebuild_of_a_mirrored_tag_is_drift() -> None:
    recorded = {"1.5.2": Recorded(C, B)}  # mirror wrote B, then saw upstream at C
    finding = only(state({"1.5.2": B}, {"1.5.2": C}, recorded=recorded))
    assert (finding.rule, finding.severity) == ("drift", Severity.WARNING)
    assert "upstream rebuilt it" in finding.message


def test_drift_is_known_from_the_ledger_when_upstream_dropped_the_tag() -> None:
    recorded = {"1.5.2": Recorded(C, B)}
    assert found(state({"1.5.2": B}, {}, recorded=recorded)) == [
        ("drift", "1.5.2", Severity.WARNING)
    ]


def test_a_difference_from_upstream_without_records_is_an_error() -> None:
    finding = only(state({"1.5.2": B}, {"1.5.2": C}))
    assert (finding.rule, finding.severity) == ("digest-differs", Severity.ERROR)
    assert "drift or tampering" in finding.message


@pytest.mark.parametrize(
    ("upstream", "recorded"),
    [
        ({"1.5.2": B}, {"1.5.2": Recorded(B, B)}),  # all agree
        ({"1.5.2": B}, {}),  # no ledger, same as upstream
        ({}, {}),  # upstream dropped the tag, nothing recorded
        ({}, {"1.5.2": Recorded(B, None)}),  # recorded upstream only, same digest
    ],
)
def test_digest_rules_stay_quiet_when_everything_agrees(
    upstream: dict[str, str], recorded: dict[str, Recorded]
) -> None:
    assert found(state({"1.5.2": B}, upstream, recorded=recorded)) == []


def test_findings_come_per_repository_in_version_order() -> None:
    agent = state({"1.5.2": B, "latest": A, "1.5.1": A}, {"1.5.1": A, "1.5.2": B})
    hub = state({"1.5.1": A}, {"1.5.1": C}, repository=HUB)
    assert [(f.repository, f.tag) for f in audit([agent, hub])] == [
        (AGENT, "latest"),
        (HUB, "1.5.1"),
    ]


# --- gathering from real registries ---------------------------------------------------


class Locks:
    """Lock states as a registry would report them (None: not known)."""

    def __init__(self, states: Mapping[str, bool]) -> None:
        self.states = dict(states)
        self.asked: list[tuple[str, str]] = []

    def is_locked(self, repository: str, tag: str) -> bool | None:
        self.asked.append((repository, tag))
        return self.states.get(tag)


def policy_selector(repository: str, tags: Sequence[str]) -> Sequence[Verdict]:
    return evaluate(DEFAULT, repository, tags, lines=[Line(1, 5)])


@pytest.mark.registry
def test_gather_and_audit_a_real_mirror(
    tmp_path: Path,
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    for version in ("1.5.0", "1.5.1"):
        seeder.push_release(AGENT, version)
    seeder.tag(AGENT, "1.5.1", "1.5")
    seeder.tag(AGENT, "1.5.1", "1.5.1-linux-amd64")
    seeder.tag(AGENT, "1.5.1", "latest")
    outcome = sync(
        source_client, target_client, [AGENT], Quiet(strict=True), select=policy_selector
    )
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        began = datetime.now(UTC)
        ledger.record_sync(
            source=upstream.url,
            target=target.url,
            steps=outcome.steps,
            written=outcome.result.tags,
            started=began,
            finished=began + timedelta(seconds=1),
        )
        clean = gather(
            source_client,
            target_client,
            [AGENT],
            policy_selector,
            ledger=ledger,
            target_name=target.url,
        )
        assert audit(clean) == []

        target_seeder.push_release(AGENT, "latest", salt="pushed by hand")
        target_seeder.push_release(AGENT, "1.5.0", salt="tampered")
        seeder.push_release(AGENT, "1.5.2")
        seeder.tag(AGENT, "1.5.2", "1.5")
        locks = Locks({"1.5.0": True, "1.5.1": False})
        mark = len(upstream.requests())
        states = gather(
            source_client,
            target_client,
            [AGENT],
            policy_selector,
            ledger=ledger,
            target_name=target.url,
            locks=locks,
        )
    asked_upstream = {
        r.path.partition("?")[0].rsplit("/", 1)[1] for r in upstream.requests_since(mark)
    }
    assert found(*states) == [
        ("tampered", "1.5.0", Severity.ERROR),
        ("unlocked", "1.5.1", Severity.ERROR),
        ("rolling-behind", "1.5", Severity.WARNING),
        ("convention", "latest", Severity.ERROR),
    ]
    assert states[0].target.keys() == {"1.5.0", "1.5.1", "1.5", "latest"}
    # Upstream: one listing, then only the tags the checks need (not the per-arch copy).
    assert asked_upstream == {"list", "1.5.0", "1.5.1", "1.5", "latest", "1.5.2"}
    assert sorted(tag for _, tag in locks.asked) == ["1.5", "1.5.0", "1.5.1", "latest"]

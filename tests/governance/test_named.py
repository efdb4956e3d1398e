"""Tags a deployment names (`governance/named.py`): selected on top of the policy where
it applies, alone elsewhere; `latest` and debug images only when allowed."""

from __future__ import annotations

from collections.abc import Sequence

from mirror.governance.named import DEBUG, LATEST, Naming
from mirror.governance.policy import evaluate
from mirror.governance.selection import Verdict
from tests.governance.test_policy import default_policy

AGENT, SENSOR = "azureiotedge-agent", "azureiotedge-simulated-temperature-sensor"
DIGEST = "sha256:" + "ab" * 32


def policy(repository: str, tags: Sequence[str]) -> Sequence[Verdict]:
    return evaluate(default_policy(), repository, tags)


def chosen(verdicts: Sequence[Verdict]) -> dict[str, str]:
    return {v.tag: v.reason for v in verdicts if v.selected}


def test_where_the_policy_applies_a_named_tag_is_added_to_its_selection() -> None:
    naming = Naming({AGENT: {"1.1": "a.json:18 (edgeAgent)"}}, policy=frozenset({AGENT}))
    verdicts = naming.selector(policy)(AGENT, ["1.1", "1.1.12", "1.1.13", "1.5.3", "1.5"])
    assert chosen(verdicts) == {
        "1.5.3": "select: specific",
        "1.5": "select: rolling",
        "1.1": "select: named by a.json:18 (edgeAgent)",
        "1.1.13": "select: the newest of rolling 1.1, named by a.json:18 (edgeAgent)",
    }
    assert {v.tag: v.reason for v in verdicts}["1.1.12"].startswith("skip: ")


def test_elsewhere_only_what_is_named() -> None:
    naming = Naming({SENSOR: {"1.0": "a.json:60 (tempSensor)"}})
    verdicts = naming.selector(policy)(SENSOR, ["1.0", "1.5.3", "1.5"])
    assert chosen(verdicts) == {"1.0": "select: named by a.json:60 (tempSensor)"}
    assert {v.tag: v.reason for v in verdicts if not v.selected} == {
        "1.5.3": "skip: no deployment names it",
        "1.5": "skip: no deployment names it",
    }


def test_a_named_tag_keeps_its_class_so_decide_still_guards_it() -> None:
    naming = Naming({SENSOR: {"1.4.6": "x", "1.0": "y", DIGEST: "z"}})
    kinds = {v.tag: v.kind for v in naming.selector(policy)(SENSOR, ["1.4.6", "1.0"])}
    assert kinds == {"1.4.6": "specific", "1.0": "rolling", DIGEST: "other"}


def test_a_digest_is_selected_though_no_listing_has_it() -> None:
    naming = Naming({SENSOR: {DIGEST: "p.json:3 (m)"}})
    assert chosen(naming.selector(policy)(SENSOR, ["1.0"])) == {
        DIGEST: "select: named by p.json:3 (m)"
    }


def test_a_tag_upstream_lacks_is_reported_not_guessed() -> None:
    naming = Naming({SENSOR: {"1.0.99": "a.json:1 (m)"}})
    (verdict,) = [v for v in naming.selector(policy)(SENSOR, ["1.0"]) if v.tag == "1.0.99"]
    assert (verdict.selected, verdict.reason) == (
        False,
        "skip: named by a.json:1 (m), but not upstream",
    )


def test_latest_and_debug_images_need_to_be_allowed() -> None:
    references = {SENSOR: {"latest": "a.json:1 (m)", "1.5.3.debug": "a.json:2 (n)"}}
    tags = ["latest", "1.5.3.debug"]
    refused = {v.tag: v.reason for v in Naming(references).selector(policy)(SENSOR, tags)}
    assert refused == {
        "latest": "skip: named by a.json:1 (m), but latest is not mirrored (--allow latest)",
        "1.5.3.debug": "skip: named by a.json:2 (n), but a debug image is not mirrored "
        "(--allow debug)",
    }
    allowed = Naming(references, allow=frozenset({LATEST, DEBUG})).selector(policy)(SENSOR, tags)
    assert set(chosen(allowed)) == {"latest", "1.5.3.debug"}

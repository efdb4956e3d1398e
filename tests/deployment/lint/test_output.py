"""Lint output: text, JSON and SARIF 2.1.0."""

from __future__ import annotations

import json

import pytest

from mirror.deployment.errors import InvalidJson
from mirror.deployment.lint.catalog import RULES
from mirror.deployment.lint.finding import Finding, Severity
from mirror.deployment.lint.output import artifact_uri, render

FINDINGS = [
    Finding(
        "debug-image", Severity.ERROR, "deploy/a b.json", 12, "modulesContent.x", "use release", 5
    ),
    Finding("mutable-tag", Severity.WARNING, "deploy/a b.json", 14, "modulesContent.y", "pin it"),
    Finding("unused-protocol-head", Severity.INFO, "/abs/c.json", 3, "modulesContent.z", "disable"),
]
ERROR = InvalidJson("broken.json", "expected ',' or '}' after an object member", 7, 3)


def test_text() -> None:
    text = render(FINDINGS, "text", [ERROR])
    assert text.splitlines() == [
        "deploy/a b.json:12:5: error: use release [debug-image] (modulesContent.x)",
        "deploy/a b.json:14:1: warning: pin it [mutable-tag] (modulesContent.y)",
        "/abs/c.json:3:1: info: disable [unused-protocol-head] (modulesContent.z)",
        "broken.json:7:3: not valid JSON: expected ',' or '}' after an object member",
        "1 error, 1 warning, 1 info; 1 file not linted",
    ]
    assert render([], "text") == "0 errors, 0 warnings, 0 infos\n"


def test_json_is_a_list_of_findings() -> None:
    data = json.loads(render(FINDINGS, "json"))
    assert data[0] == {
        "rule": "debug-image",
        "severity": "error",
        "file": "deploy/a b.json",
        "line": 12,
        "column": 5,
        "path": "modulesContent.x",
        "message": "use release",
    }
    assert [d["severity"] for d in data] == ["error", "warning", "info"]
    assert json.loads(render([], "json")) == []


def test_sarif() -> None:
    log = json.loads(render(FINDINGS, "sarif", [ERROR]))
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == [r.id for r in RULES]
    assert all(r["shortDescription"]["text"] for r in driver["rules"])
    first, _, third = run["results"]
    assert first["ruleId"] == "debug-image"
    assert driver["rules"][first["ruleIndex"]]["id"] == "debug-image"
    assert first["level"] == "error"
    assert third["level"] == "note"
    location = first["locations"][0]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "deploy/a%20b.json"},
        "region": {"startLine": 12, "startColumn": 5},
    }
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "modulesContent.x"
    assert third["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "file:///abs/c.json"
    )
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["message"]["text"].startswith("broken.json:7:3: ")
    assert notification["locations"][0]["physicalLocation"]["region"] == {"startLine": 7}


def test_sarif_without_errors_succeeds() -> None:
    log = json.loads(render([], "sarif"))
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is True
    assert log["runs"][0]["results"] == []


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="use text, json, sarif"):
        render(FINDINGS, "xml")


@pytest.mark.parametrize(
    ("file", "uri"),
    [("a.json", "a.json"), ("dir/x y.json", "dir/x%20y.json"), ("/a/b.json", "file:///a/b.json")],
)
def test_artifact_uri(file: str, uri: str) -> None:
    assert artifact_uri(file) == uri

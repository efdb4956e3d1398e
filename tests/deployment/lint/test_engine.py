"""The lint engine: grading, profiles, overrides, and files that cannot be linted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from mirror.deployment.errors import InvalidJson, NotADeploymentManifest, UnreadableFile
from mirror.deployment.lint.catalog import RULE_IDS, RULES, RULES_BY_ID
from mirror.deployment.lint.engine import CHECKS, lint_paths, lint_source
from mirror.deployment.lint.finding import Finding, Severity, has_errors
from mirror.deployment.settings import LintSettings
from tests.deployment.helpers import dumps
from tests.deployment.lint_cases import CLEAN, FILTER, lint, vary

LATEST = vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:latest"))


def rules(findings: Sequence[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.severity.value) for f in findings]


def test_every_catalog_rule_has_a_check() -> None:
    assert set(CHECKS) == set(RULE_IDS)
    assert len(RULES) == len(RULES_BY_ID) == 29


def test_default_severity() -> None:
    assert rules(lint(LATEST)) == [("mutable-tag", "warning")]
    assert not has_errors(lint(LATEST))


def test_production_profile_raises_checklist_warnings() -> None:
    findings = lint(LATEST, LintSettings(profile="production"))
    assert rules(findings) == [("mutable-tag", "error")]
    assert has_errors(findings)


def test_production_profile_leaves_other_warnings() -> None:
    document = vary((f"{FILTER}/settings/createOptions", '{"HostConfig": {"Privileged": true}}'))
    findings = lint(document, LintSettings(profile="production", daemon_log_policy=True))
    assert rules(findings) == [("privileged-module", "warning")]


def test_overrides_beat_the_profile() -> None:
    settings = LintSettings(profile="production", severity={"mutable-tag": "info"})
    assert rules(lint(LATEST, settings)) == [("mutable-tag", "info")]


def test_off_and_disabled_rules_report_nothing() -> None:
    assert lint(LATEST, LintSettings(severity={"mutable-tag": "off"})) == []
    assert lint(LATEST, LintSettings(disabled=["mutable-tag"])) == []


def test_two_severity_rules_can_be_regraded_as_a_whole() -> None:
    document = vary(("modulesContent/$edgeHub/properties.desired/storeAndForwardConfiguration", {}))
    assert rules(lint(document)) == [("message-ttl", "warning")]
    settings = LintSettings(severity={"message-ttl": "error"})
    assert rules(lint(document, settings)) == [("message-ttl", "error")]


def test_findings_are_sorted_by_line() -> None:
    document = vary(
        (f"{FILTER}/settings/image", "myacr.azurecr.io/filter:latest"),
        ("modulesContent/$edgeAgent/properties.desired/schemaVersion", "2.0"),
    )
    findings = lint(document)
    assert [f.rule for f in findings] == ["agent-schema-version", "mutable-tag"]
    assert findings[0].line < findings[1].line


def test_lint_source_names_the_file() -> None:
    (finding,) = lint_source(dumps(LATEST), "site/edge.json")
    assert finding.file == "site/edge.json"
    assert finding.as_dict()["rule"] == "mutable-tag"
    assert set(finding.as_dict()) >= {"rule", "severity", "file", "line", "path", "message"}


def test_bad_files_are_reported_and_the_others_linted(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(dumps(LATEST))
    broken = tmp_path / "broken.json"
    broken.write_text('{"modulesContent": {\n')
    other = tmp_path / "package.json"
    other.write_text('{"name": "x"}')
    missing = tmp_path / "missing.json"
    report = lint_paths([broken, good, other, missing])
    assert report.files == 4
    assert [type(e) for e in report.errors] == [InvalidJson, NotADeploymentManifest, UnreadableFile]
    messages = [str(e) for e in report.errors]
    assert messages[0].startswith(f"{broken}:2:1: not valid JSON: ")
    assert (
        messages[1]
        == f"{other}: is not a deployment manifest: no modulesContent (nor content.modulesContent)"
    )
    assert messages[2].startswith(f"{missing}: cannot read: ")
    assert all("\n" not in m for m in messages)
    assert rules(report.findings) == [("mutable-tag", "warning")]
    assert report.failed


def test_clean_files_pass(tmp_path: Path) -> None:
    path = tmp_path / "clean.json"
    path.write_text(dumps(CLEAN))
    report = lint_paths([path])
    assert not report.failed
    assert report.findings == ()


@pytest.mark.parametrize(("template", "count"), [(None, 0), (True, 0), (False, 1)])
def test_template_setting(template: bool | None, count: int) -> None:
    document = vary((f"{FILTER}/settings/image", "${MODULES.filter}"))
    findings = lint(document, LintSettings(template=template))
    assert len([f for f in findings if f.rule == "unresolved-placeholder"]) == count


def test_severity_rank() -> None:
    assert sorted(Severity, key=lambda s: s.rank) == [
        Severity.ERROR,
        Severity.WARNING,
        Severity.INFO,
    ]

"""Rendering lint results: text for people, JSON for scripts, SARIF 2.1.0 for
code-scanning UIs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote

from mirror import __version__
from mirror.deployment.errors import DeploymentFileError
from mirror.deployment.lint.catalog import RULES
from mirror.deployment.lint.finding import Finding, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
FORMATS = ("text", "json", "sarif")


def render(
    findings: Sequence[Finding],
    output_format: str = "text",
    errors: Sequence[DeploymentFileError] = (),
) -> str:
    """Render findings (and files that could not be linted) in `output_format`."""
    if output_format == "json":
        return render_json(findings)
    if output_format == "sarif":
        return render_sarif(findings, errors)
    if output_format == "text":
        return render_text(findings, errors)
    raise ValueError(f"unknown lint output format {output_format!r}: use {', '.join(FORMATS)}")


def render_text(findings: Sequence[Finding], errors: Sequence[DeploymentFileError] = ()) -> str:
    """One line per finding, `file:line:column: severity: message [rule] (path)`, and a total."""
    lines = [
        f"{f.file}:{f.line}:{f.column}: {f.severity.value}: {f.message} [{f.rule}] ({f.path})"
        for f in findings
    ]
    lines += [f"{error}" for error in errors]
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    summary = ", ".join(f"{n} {s.value}{'' if n == 1 else 's'}" for s, n in counts.items())
    if errors:
        summary += f"; {len(errors)} file{'' if len(errors) == 1 else 's'} not linted"
    return "\n".join([*lines, summary]) + "\n"


def render_json(findings: Sequence[Finding]) -> str:
    """A JSON list of findings, each with rule, severity, file, line, column, path, message."""
    return json.dumps([f.as_dict() for f in findings], indent=2) + "\n"


def render_sarif(findings: Sequence[Finding], errors: Sequence[DeploymentFileError] = ()) -> str:
    """A SARIF 2.1.0 log with one run, every rule described, and a result per finding."""
    index = {rule.id: position for position, rule in enumerate(RULES)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "mirror-lint",
                "version": __version__,
                "rules": [_sarif_rule(rule.id, rule.summary, rule.severity) for rule in RULES],
            }
        },
        "results": [_sarif_result(f, index[f.rule]) for f in findings],
        "invocations": [
            {
                "executionSuccessful": not errors,
                "toolExecutionNotifications": [_sarif_notification(e) for e in errors],
            }
        ],
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def _sarif_rule(rule_id: str, summary: str, severity: Severity) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": summary},
        "defaultConfiguration": {"level": _SARIF_LEVELS[severity]},
    }


def _sarif_result(finding: Finding, rule_index: int) -> dict[str, Any]:
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(finding.file)},
                    "region": {"startLine": finding.line, "startColumn": finding.column},
                },
                "logicalLocations": [{"fullyQualifiedName": finding.path, "kind": "member"}],
            }
        ],
    }


def _sarif_notification(error: DeploymentFileError) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(error.file)}}
    if error.line is not None:
        location["region"] = {"startLine": error.line}
    return {
        "level": "error",
        "message": {"text": str(error)},
        "locations": [{"physicalLocation": location}],
    }


def artifact_uri(file: str) -> str:
    """A SARIF artifact URI: relative paths as they are (URL-quoted), absolute as file://."""
    path = PurePath(file)
    if path.is_absolute():
        return "file://" + quote(PurePosixPath(*path.parts).as_posix())
    return quote(path.as_posix())

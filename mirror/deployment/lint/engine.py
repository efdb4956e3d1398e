"""Running the lint rules over manifests and grading what they find.

Severity is decided in this order: the rule's default (or the issue's own, for rules
with two), then the `production` profile (checklist warnings become errors), then
the user's per-rule overrides (`off` drops the finding). Disabled rules do not run.
A file that cannot be read, parsed or recognised is reported as a one-line error
and the other files are still linted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mirror.deployment.document import parse_document, read_document
from mirror.deployment.errors import DeploymentFileError
from mirror.deployment.lint import containers, credentials, edgehub, images, structure
from mirror.deployment.lint.catalog import RULES, RULES_BY_ID
from mirror.deployment.lint.context import Check, Issue, LintContext
from mirror.deployment.lint.finding import Finding, Severity, has_errors, one_line
from mirror.deployment.runtime import DEFAULT_CATALOG, RuntimeCatalog
from mirror.deployment.settings import LintSettings
from mirror.deployment.shape import DeploymentManifest, load_manifest

CHECKS: dict[str, Check] = {
    **structure.CHECKS,
    **images.CHECKS,
    **credentials.CHECKS,
    **containers.CHECKS,
    **edgehub.CHECKS,
}


def lint_manifest(
    manifest: DeploymentManifest,
    settings: LintSettings | None = None,
    catalog: RuntimeCatalog = DEFAULT_CATALOG,
) -> list[Finding]:
    """Every finding of the enabled rules on `manifest`, graded and sorted by line."""
    settings = settings or LintSettings()
    context = LintContext(manifest, settings, catalog)
    findings = []
    for rule in RULES:
        if rule.id in settings.disabled:
            continue
        for issue in CHECKS[rule.id](context):
            finding = _grade(manifest, issue, settings)
            if finding is not None:
                findings.append(finding)
    return sorted(findings, key=lambda f: (f.line, f.column, f.rule, f.path))


def _grade(manifest: DeploymentManifest, issue: Issue, settings: LintSettings) -> Finding | None:
    rule = RULES_BY_ID[issue.rule]
    severity = issue.severity or rule.severity
    if settings.profile == "production" and rule.checklist and severity is Severity.WARNING:
        severity = Severity.ERROR
    override = settings.severity.get(rule.id)
    if override == "off":
        return None
    if override is not None:
        severity = Severity(override)
    document = manifest.document
    return Finding(
        rule=rule.id,
        severity=severity,
        file=manifest.file,
        line=document.line_of(issue.anchor),
        path=one_line(issue.path),
        message=one_line(issue.message),
        column=document.column_of(issue.anchor),
    )


def lint_source(
    data: bytes | str,
    file: str,
    settings: LintSettings | None = None,
    catalog: RuntimeCatalog = DEFAULT_CATALOG,
) -> list[Finding]:
    """Lint the text of one file; raises `DeploymentFileError` if it is not a manifest."""
    settings = settings or LintSettings()
    manifest = load_manifest(parse_document(data, file), template=settings.template)
    return lint_manifest(manifest, settings, catalog)


@dataclass(frozen=True)
class LintReport:
    """The findings over several files, and the files that could not be linted."""

    findings: tuple[Finding, ...]
    errors: tuple[DeploymentFileError, ...]
    files: int

    @property
    def failed(self) -> bool:
        """Whether lint should exit non-zero: an error finding or a file not linted."""
        return has_errors(self.findings) or bool(self.errors)


def lint_paths(
    paths: Iterable[str | Path],
    settings: LintSettings | None = None,
    catalog: RuntimeCatalog = DEFAULT_CATALOG,
) -> LintReport:
    """Lint each file in turn; a file that fails to load is recorded and skipped."""
    settings = settings or LintSettings()
    findings: list[Finding] = []
    errors: list[DeploymentFileError] = []
    count = 0
    for path in paths:
        count += 1
        try:
            manifest = load_manifest(read_document(path), template=settings.template)
        except DeploymentFileError as exc:
            errors.append(exc)
            continue
        findings += lint_manifest(manifest, settings, catalog)
    return LintReport(tuple(findings), tuple(errors), count)

"""Running the lint rules over manifests and grading what they find.

Severity is decided in this order: the rule's default (or the issue's own, for rules
with two), then the `production` profile (checklist warnings become errors), then
the user's per-rule overrides (`off` drops the finding). Disabled rules do not run.
A file that cannot be read, parsed or recognised is reported as a one-line error
and the other files are still linted. Device configs (`/etc/aziot/config.toml`) are
linted with the rules of `device`, and so is Moby's `daemon.json` when one is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mirror.deployment.device import DeviceConfig, read_deployment_file
from mirror.deployment.document import Document, parse_document, read_document
from mirror.deployment.errors import DeploymentFileError
from mirror.deployment.lint import containers, credentials, edgehub, images, structure
from mirror.deployment.lint.catalog import RULES, RULES_BY_ID
from mirror.deployment.lint.context import Check, Issue, LintContext
from mirror.deployment.lint.device import (
    DeviceContext,
    daemon_has_log_policy,
    daemon_log_issues,
    device_issues,
)
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
    document = manifest.document
    line, column = document.line_of(issue.anchor), document.column_of(issue.anchor)
    return grade(issue, settings, manifest.file, line, column)


def grade(
    issue: Issue, settings: LintSettings, file: str, line: int, column: int
) -> Finding | None:
    """The finding of `issue` at `file:line:column`, graded; None when it is turned off."""
    rule = RULES_BY_ID[issue.rule]
    severity = issue.severity or rule.severity
    if settings.profile == "production" and rule.checklist and severity is Severity.WARNING:
        severity = Severity.ERROR
    override = settings.severity.get(rule.id)
    if override == "off":
        return None
    if override is not None:
        severity = Severity(override)
    return Finding(
        rule=rule.id,
        severity=severity,
        file=file,
        line=line,
        path=one_line(issue.path),
        message=one_line(issue.message),
        column=column,
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


def lint_device_config(
    config: DeviceConfig,
    settings: LintSettings | None = None,
    catalog: RuntimeCatalog = DEFAULT_CATALOG,
) -> list[Finding]:
    """Every finding of the enabled rules on a device config, graded and sorted by line."""
    settings = settings or LintSettings()
    issues = device_issues(DeviceContext(config, settings, catalog))
    return _graded(issues, settings, config.file, config.line_of, config.column_of)


def lint_daemon_json(document: Document, settings: LintSettings | None = None) -> list[Finding]:
    """The findings on Moby's daemon.json (its default log limits), sorted by line."""
    settings = settings or LintSettings()
    issues = daemon_log_issues(document)
    return _graded(issues, settings, document.file, document.line_of, document.column_of)


def _graded(
    issues: Iterable[Issue],
    settings: LintSettings,
    file: str,
    line_of: Callable[[int], int],
    column_of: Callable[[int], int],
) -> list[Finding]:
    """The enabled `issues` as graded findings of `file`, sorted by line."""
    findings = []
    for issue in issues:
        if issue.rule in settings.disabled:
            continue
        finding = grade(issue, settings, file, line_of(issue.anchor), column_of(issue.anchor))
        if finding is not None:
            findings.append(finding)
    return sorted(findings, key=lambda f: (f.line, f.column, f.rule, f.path))


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
    daemon_json: str | Path | None = None,
) -> LintReport:
    """Lint each file in turn; a file that fails to load is recorded and skipped.

    With `daemon_json` (Moby's `/etc/docker/daemon.json`), its log defaults are checked
    first; when they limit every container's logs, the fleet counts as having a
    daemon-wide log policy and no module is asked for its own limits.
    """
    settings = settings or LintSettings()
    findings: list[Finding] = []
    errors: list[DeploymentFileError] = []
    count = 0
    if daemon_json is not None:
        count += 1
        try:
            daemon = read_document(daemon_json)
        except DeploymentFileError as exc:
            errors.append(exc)
        else:
            findings += lint_daemon_json(daemon, settings)
            if daemon_has_log_policy(daemon):
                settings = settings.model_copy(update={"daemon_log_policy": True})
    for path in paths:
        count += 1
        try:
            findings += _lint_file(path, settings, catalog)
        except DeploymentFileError as exc:
            errors.append(exc)
    return LintReport(tuple(findings), tuple(errors), count)


def _lint_file(path: str | Path, settings: LintSettings, catalog: RuntimeCatalog) -> list[Finding]:
    """The findings on one file, a device config or a deployment manifest."""
    read = read_deployment_file(path)
    if isinstance(read, DeviceConfig):
        return lint_device_config(read, settings, catalog)
    manifest = load_manifest(read, template=settings.template)
    return lint_manifest(manifest, settings, catalog)

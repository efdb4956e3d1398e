"""`mirror lint`: check deployment manifests and device configs against the production
checklist.

`mirror sync` loads this module too, so only typer and the standard library are
imported here; the lint rules and the config are imported when the command runs. A
file that cannot be read, is not JSON or is not a deployment manifest gets one error
line naming it, and the other files are still checked. Exit codes: 0 done, 1 an
error finding or a file failed, 2 bad options or config.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mirror.cli.app import EXIT_FAILED, app, config_error, fail, usage_error
from mirror.cli.options import ConfigOption
from mirror.cli.rewrite import write_file

if TYPE_CHECKING:
    from mirror.deployment.lint.engine import LintReport
    from mirror.deployment.settings import LintSettings


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


class Profile(StrEnum):
    default = "default"
    production = "production"


@app.command(rich_help_panel="Deployments")
def lint(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Deployment manifests (JSON) and device configs (/etc/aziot/config.toml: a "
            "*.toml file, or TOML with an [agent] table) to check.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            help="text: one line per finding (file:line:column: severity: message, rule id). "
            "json: a list of findings. sarif: SARIF 2.1.0 for code-scanning uploads.",
        ),
    ] = ReportFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the report to this file. Default: standard output.",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        Profile | None,
        typer.Option(
            "--profile",
            help="production: the production-checklist warnings become errors. "
            "Default: lint.profile in the config (default).",
            show_default=False,
        ),
    ] = None,
    disable: Annotated[
        list[str] | None,
        typer.Option(
            "--disable",
            metavar="RULE",
            help="Do not run this rule (repeatable).",
            show_default=False,
        ),
    ] = None,
    enable: Annotated[
        list[str] | None,
        typer.Option(
            "--enable",
            metavar="RULE",
            help="Run this rule although lint.disabled lists it (repeatable).",
            show_default=False,
        ),
    ] = None,
    severity: Annotated[
        list[str] | None,
        typer.Option(
            "--severity",
            metavar="RULE=LEVEL",
            help="RULE=LEVEL, LEVEL one of error, warning, info, off (repeatable); "
            "wins over the profile and the config.",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        bool | None,
        typer.Option(
            "--template/--deployable",
            help="Treat the files as templates (placeholders expected) or as manifests "
            "ready to deploy. Default: lint.template, else detected per file.",
            show_default=False,
        ),
    ] = None,
    daemon_json: Annotated[
        Path | None,
        typer.Option(
            "--daemon-json",
            metavar="FILE",
            help="The devices' /etc/docker/daemon.json: check its default log settings "
            "(log-driver local or json-file with log-opts max-size and max-file). When it "
            "limits every container's logs, modules need no limits of their own.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check manifests against what edgeAgent and edgeHub accept and the production checklist.

    A device config (config.toml) is checked for the edgeAgent it starts with: image
    from the mirror, pinned to a specific version, [agent.config.auth] for a private
    registry, log limits in [agent.config.createOptions].

    Every finding names its rule; rules can be disabled or re-graded in the config
    (lint.disabled, lint.severity) or for one run. Exit code 1 when a finding is an
    error or a file could not be linted.
    """
    from mirror.deployment.lint.engine import lint_paths

    if not files and daemon_json is None:
        raise usage_error("name at least one FILE to check (or --daemon-json FILE)")
    settings = _lint_settings(config, profile, disable, enable, severity, template)
    report = lint_paths(files or [], settings, daemon_json=daemon_json)
    _report(report, output_format, output)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


def _lint_settings(
    config_path: Path | None,
    profile: Profile | None,
    disable: list[str] | None,
    enable: list[str] | None,
    severity: list[str] | None,
    template: bool | None,
) -> LintSettings:
    """The config's lint settings with this run's choices on top."""
    from pydantic import ValidationError

    from mirror.deployment.lint.catalog import RULE_IDS
    from mirror.settings.config import load_config

    config = load_config(config_path)
    grades: dict[str, Any] = {}
    for item in severity or []:
        rule, equals, level = item.partition("=")
        if not equals or not rule.strip() or not level.strip():
            raise usage_error(f"--severity {item!r}: write RULE=LEVEL, e.g. mutable-tag=error")
        grades[rule.strip()] = level.strip().lower()
    for rule in enable or []:
        if rule not in RULE_IDS:
            raise usage_error(
                f"--enable {rule}: unknown lint rule; the rules are: {', '.join(RULE_IDS)}"
            )
    base = config.lint
    if base.private_registry is None:
        base = base.model_copy(update={"private_registry": _mirror_name(config.target)})
    try:
        return base.with_overrides(
            disable=disable or [],
            enable=enable or [],
            severity=grades,
            profile=profile.value if profile else None,
            template=template,
        )
    except ValidationError as exc:
        raise config_error(exc, "lint") from None


def _mirror_name(target: str) -> str | None:
    """The configured target as image strings name it, if it is a registry."""
    from mirror.deployment.resolvers import Target
    from mirror.errors import MirrorError

    if target.startswith("oci:"):
        return None
    try:
        return str(Target.parse(target))
    except MirrorError:
        return None


def _report(report: LintReport, output_format: ReportFormat, output: Path | None) -> None:
    from mirror.deployment.lint.output import render

    text = render(report.findings, output_format.value, report.errors)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            write_file(output, text.encode("utf-8"), like=None)
        except OSError as exc:
            fail(f"error: {output}: cannot write: {exc.strerror or exc}")
            raise typer.Exit(EXIT_FAILED) from None
    if output is not None or output_format is not ReportFormat.text:
        for error in report.errors:
            fail(f"error: {error}")

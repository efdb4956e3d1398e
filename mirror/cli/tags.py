"""`mirror tags list`: what the mirror holds; `mirror tags audit`: the target registry
checked against the policy, upstream and the ledger."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mirror.cli.app import EXIT_FAILED, app
from mirror.cli.options import ConfigOption, LedgerOption, Output, OutputOption, count, iso

if TYPE_CHECKING:
    from mirror.engine.inventory import Held
    from mirror.governance.audit import RepositoryState, Violation


class FailOn(StrEnum):
    error = "error"
    warning = "warning"


tags_app = typer.Typer(
    name="tags",
    help="What the mirror holds, and its tags checked against the policy.",
    no_args_is_help=True,
)
app.add_typer(tags_app, name="tags", rich_help_panel="Mirroring")

MirrorOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        metavar="REGISTRY",
        help="The mirror. Default: the config's target.",
        show_default=False,
    ),
]


@tags_app.command("list")
def list_command(
    repositories: Annotated[
        list[str] | None,
        typer.Argument(
            help="Repositories to list. Default: the config's repositories.",
            metavar="[REPO]...",
            show_default=False,
        ),
    ] = None,
    target: MirrorOption = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Ask the registry too: platforms, locks (ACR), tags moved in it or "
            "that the ledger has no record of.",
        ),
    ] = False,
    output: OutputOption = Output.text,
    ledger: LedgerOption = None,
    config: ConfigOption = None,
) -> None:
    """What the mirror holds, per repository and tag in version order: kind (specific,
    rolling, derived), state (mirrored, held, pending), digest and when it was
    mirrored, from the ledger; with --live, from the registry as well."""
    held = _inventory(repositories, target, live, ledger, config)
    if output is Output.json:
        typer.echo(json.dumps([_held_json(h) for h in held], indent=2))
        return
    _print_inventory(held, live)


def _inventory(
    repositories: list[str] | None,
    target: str | None,
    live: bool,
    ledger: str | None,
    config: Path | None,
) -> list[Held]:
    from mirror.engine.connect import acr_metadata, open_store
    from mirror.engine.inventory import from_ledger, with_registry
    from mirror.engine.job import Job
    from mirror.ledger import Ledger

    job = Job.from_options(config, None, target, repositories, False, None)
    with Ledger.open(ledger or job.config.ledger) as book:
        recorded = from_ledger(book, job.target, job.repositories)
    if not live:
        return recorded
    store = open_store(job.target, job.config)
    try:
        metadata = acr_metadata(store, job.config)
        return with_registry(
            recorded, store, job.repositories, metadata, concurrency=job.concurrency
        )
    finally:
        store.close()


def _held_json(held: Held) -> dict[str, Any]:
    return {
        "repository": held.repository,
        "tag": held.tag,
        "kind": held.kind,
        "state": held.state,
        "digest": held.digest,
        "mirrored": iso(held.mirrored),
        "platforms": list(held.platforms) if held.platforms is not None else None,
        "locked": held.locked,
    }


def _print_inventory(held: list[Held], live: bool) -> None:
    if not held:
        typer.echo("nothing recorded: run mirror sync first (or --live to ask the registry)")
        return
    rows = [
        [
            f"{h.repository}:{h.tag}",
            h.kind,
            h.state,
            h.digest.partition(":")[2][:12] if h.digest else "-",
            h.mirrored.strftime("%Y-%m-%d %H:%M") if h.mirrored else "-",
            *([", ".join(h.platforms or ()) or "-", _lock(h.locked)] if live else []),
        ]
        for h in held
    ]
    headers = ["TAG", "KIND", "STATE", "DIGEST", "MIRRORED"]
    headers += ["PLATFORMS", "LOCK"] if live else []
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        typer.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip())
    repositories = len({h.repository for h in held})
    typer.echo(f"{count(len(held), 'tag')} in {count(repositories, 'repository', 'repositories')}")


def _lock(locked: bool | None) -> str:
    return "-" if locked is None else "locked" if locked else "unlocked"


@tags_app.command("audit")
def audit(
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            metavar="REGISTRY",
            help="Upstream registry to compare with. Default: the config's, else "
            "mcr.microsoft.com.",
            show_default=False,
        ),
    ] = None,
    target: MirrorOption = None,
    repo: Annotated[
        list[str] | None,
        typer.Option(
            "--repo",
            metavar="NAME",
            help="Repository to audit (repeatable). Default: the config's repositories.",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = Output.text,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit 1 on findings of this severity or worse."),
    ] = FailOn.error,
    ledger: LedgerOption = None,
    config: ConfigOption = None,
) -> None:
    """Check every tag of the target against the policy, upstream and the ledger.

    Errors: tags the policy never mirrors (latest, .debug, release candidates,
    per-architecture, unrecognised: convention), specific tags left writable where the
    registry reports locks (unlocked), tags changed since mirror recorded them
    (tampered), specific tags that differ from upstream without a record explaining
    why (digest-differs). Warnings: tags outside the policy's lines or versions
    (out-of-policy), rolling tags not at upstream's newest version of their line
    (rolling-behind), specific tags upstream rebuilt after they were mirrored (drift).
    Exit code 1 when a finding is at --fail-on severity or worse, else 0.
    """
    from mirror.governance.audit import Severity

    states, findings = _audit(source, target, repo, ledger, config)
    if output is Output.json:
        typer.echo(json.dumps(_audit_json(states, findings), indent=2))
    else:
        _print_audit(states, findings)
    failing = {Severity.ERROR} | ({Severity.WARNING} if fail_on is FailOn.warning else set())
    if any(finding.severity in failing for finding in findings):
        raise typer.Exit(EXIT_FAILED)


def _audit(
    source: str | None,
    target: str | None,
    repo: list[str] | None,
    ledger: str | None,
    config: Path | None,
) -> tuple[list[RepositoryState], list[Violation]]:
    from mirror.engine.connect import acr_metadata, open_store
    from mirror.engine.gather import gather
    from mirror.engine.job import Job
    from mirror.governance.audit import audit as run_audit
    from mirror.ledger import Ledger

    job = Job.from_options(config, source, target, repo, False, None)
    upstream = open_store(job.source, job.config)
    mirror = open_store(job.target, job.config)
    try:
        with Ledger.open(ledger or job.config.ledger) as book:
            states = gather(
                upstream,
                mirror,
                job.repositories,
                job.selector(),
                ledger=book,
                target_name=job.target,
                locks=acr_metadata(mirror, job.config),
                concurrency=job.concurrency,
            )
    finally:
        upstream.close()
        mirror.close()
    return states, run_audit(states)


def _audit_json(states: list[RepositoryState], findings: list[Violation]) -> dict[str, Any]:
    return {
        "findings": [
            {
                "rule": f.rule,
                "severity": f.severity.value,
                "repository": f.repository,
                "tag": f.tag,
                "message": f.message,
            }
            for f in findings
        ],
        "errors": sum(1 for f in findings if f.severity == "error"),
        "warnings": sum(1 for f in findings if f.severity == "warning"),
        "tags": sum(len(state.target) for state in states),
        "repositories": [state.repository for state in states],
    }


def _print_audit(states: list[RepositoryState], findings: list[Violation]) -> None:
    names = [f"{f.repository}:{f.tag}" for f in findings]
    width = max(map(len, names), default=0)
    rule_width = max((len(f.rule) for f in findings), default=0)
    for name, finding in zip(names, findings, strict=True):
        typer.echo(
            f"{finding.severity.value:<7}  {name:<{width}}  {finding.rule:<{rule_width}}  "
            f"{finding.message}"
        )
    scope = (
        f"{count(sum(len(s.target) for s in states), 'tag')} "
        f"in {count(len(states), 'repository', 'repositories')}"
    )
    if not findings:
        typer.echo(f"no findings: {scope} follow the policy")
        return
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    typer.echo(f"{count(errors, 'error')}, {count(warnings, 'warning')} in {scope}")

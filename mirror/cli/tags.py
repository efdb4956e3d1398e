"""`mirror history` (what a tag pointed to over time, from the ledger) and `mirror tags audit`
(a target registry checked against the policy)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mirror.cli.app import EXIT_FAILED, app, fail
from mirror.cli.options import ConfigOption, LedgerOption, Output, OutputOption

if TYPE_CHECKING:
    from mirror.audit import Finding, RepositoryState
    from mirror.ledger import DriftEvent, Ledger, Period, PointedAt


class FailOn(StrEnum):
    error = "error"
    warning = "warning"


tags_app = typer.Typer(
    name="tags",
    help="Check the tags of the mirror against the policy.",
    no_args_is_help=True,
)
app.add_typer(tags_app, name="tags", rich_help_panel="Mirroring")


# --- mirror history -------------------------------------------------------------------


@app.command(rich_help_panel="Mirroring")
def history(
    reference: Annotated[
        str,
        typer.Argument(
            metavar="REPO[:TAG]",
            help="A repository (every tag) or one tag: azureiotedge-agent:1.5.",
            show_default=False,
        ),
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Show what the tag pointed to at this moment: an ISO date (the end of that "
            "day, UTC) or date and time (2026-03-01T12:00; UTC unless an offset is given).",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Only the records of this target (when one ledger serves several mirrors).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = Output.text,
    ledger: LedgerOption = None,
    config: ConfigOption = None,
) -> None:
    """Show what a tag pointed to over time, upstream (source) and in the mirror (target).

    Read from the ledger that `mirror sync` writes: each period says from when to when
    a digest was recorded, when mirror wrote it, and for a rolling tag (1.5) which
    specific version (1.5.2) had that content. Drift (upstream rebuilt a mirrored
    specific tag) is listed after. With --at, shows the one answer for that moment:
    "what did 1.5 point to on 2026-03-01". Exit code 1 when the ledger has no record.
    """
    from mirror.config import load_config
    from mirror.ledger import Ledger

    repository, tag = _reference(reference)
    moment = _moment(at) if at is not None else None
    location = ledger or load_config(config).ledger
    with Ledger.open(location) as book:
        if moment is None:
            found = _show_history(book, repository, tag, target, output)
        else:
            found = _show_at(book, repository, tag, moment, target, output)
        if not found:
            fail(f"no record of {reference} in the ledger {book.name}")
            raise typer.Exit(EXIT_FAILED)


def _reference(text: str) -> tuple[str, str | None]:
    from mirror.reference import validate_repository, validate_tag

    repository, colon, tag = text.rpartition(":")
    if not colon or "/" in tag:
        return validate_repository(text), None
    return validate_repository(repository), validate_tag(tag)


def _moment(text: str) -> datetime:
    """An ISO date (its last instant, UTC) or date-time (UTC unless it says otherwise)."""
    from mirror.errors import ConfigError

    try:
        if len(text.strip()) == 10:
            return datetime.combine(date.fromisoformat(text.strip()), time.max, UTC)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--at: not an ISO date or time: {text!r} (e.g. 2026-03-01 or 2026-03-01T12:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _show_history(
    book: Ledger, repository: str, tag: str | None, target: str | None, output: Output
) -> bool:
    periods = book.history(repository, tag, target=target)
    drift = [e for e in book.drift_events(repository, target=target) if tag in (None, e.tag)]
    if output is Output.json:
        document = {
            "periods": [_period_json(p) for p in periods],
            "drift": [_drift_json(e) for e in drift],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_history(periods, drift)
    return bool(periods)


def _show_at(
    book: Ledger,
    repository: str,
    tag: str | None,
    moment: datetime,
    target: str | None,
    output: Output,
) -> bool:
    names = [tag] if tag is not None else book.tags(repository, target=target)
    answers = [book.at(repository, name, moment, target=target) for name in names]
    found = [answer for answer in answers if answer is not None]
    if output is Output.json:
        documents = [_pointed_json(answer) for answer in found]
        typer.echo(json.dumps(documents[0] if tag and documents else documents, indent=2))
    else:
        for answer in found:
            _print_pointed(answer)
    return bool(found)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _short(digest: str | None) -> str:
    if digest is None:
        return "-"
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}"


def _print_history(periods: list[Period], drift: list[DriftEvent]) -> None:
    current = None
    for period in periods:
        name = f"{period.repository}:{period.tag}"
        if name != current:
            typer.echo(name)
            current = name
        specific = f"= {period.specific}" if period.specific else ""
        mirrored = f"  mirrored {_when(period.mirrored)}" if period.mirrored else ""
        typer.echo(
            f"  {period.side:<6}  {_short(period.digest)}  {specific:<10}  "
            f"{_when(period.first_seen)} .. {_when(period.last_seen)}{mirrored}"
        )
    if drift:
        typer.echo("drift (upstream rebuilt a mirrored specific tag; the mirror kept its copy):")
    for event in drift:
        typer.echo(
            f"  {event.repository}:{event.tag}  kept {_short(event.target_digest)}, upstream "
            f"{_short(event.source_digest)}  {_when(event.first_seen)} .. "
            f"{_when(event.last_seen)} ({_count(event.runs, 'run')})"
        )


def _print_pointed(answer: PointedAt) -> None:
    typer.echo(f"{answer.repository}:{answer.tag} at {_when(answer.when)}")
    sides = (
        ("target", answer.target_digest, answer.target_seen),
        ("source", answer.source_digest, answer.source_seen),
    )
    for side, digest, seen in sides:
        if seen is None:
            typer.echo(f"  {side:<6}  no record")
            continue
        what = digest or "absent"
        meant = f" ({answer.specific})" if answer.specific and digest else ""
        mirrored = ""
        if side == "target" and answer.mirrored is not None:
            mirrored = f", mirrored {_when(answer.mirrored)}"
        typer.echo(f"  {side:<6}  {what}{meant}  (last recorded {_when(seen)}{mirrored})")


def _period_json(period: Period) -> dict[str, Any]:
    return {
        "repository": period.repository,
        "tag": period.tag,
        "side": period.side,
        "digest": period.digest,
        "specific": period.specific,
        "first_seen": _iso(period.first_seen),
        "last_seen": _iso(period.last_seen),
        "mirrored": _iso(period.mirrored),
    }


def _drift_json(event: DriftEvent) -> dict[str, Any]:
    return {
        "repository": event.repository,
        "tag": event.tag,
        "target_digest": event.target_digest,
        "source_digest": event.source_digest,
        "first_seen": _iso(event.first_seen),
        "last_seen": _iso(event.last_seen),
        "runs": event.runs,
    }


def _pointed_json(answer: PointedAt) -> dict[str, Any]:
    return {
        "repository": answer.repository,
        "tag": answer.tag,
        "at": _iso(answer.when),
        "target_digest": answer.target_digest,
        "target_seen": _iso(answer.target_seen),
        "mirrored": _iso(answer.mirrored),
        "source_digest": answer.source_digest,
        "source_seen": _iso(answer.source_seen),
        "specific": answer.specific,
    }


# --- mirror tags audit ----------------------------------------------------------------


@tags_app.command("audit")
def audit(
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Upstream registry to compare with. Default: the config's, else "
            "mcr.microsoft.com.",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="The mirror registry to audit. Default: the config's target.",
            show_default=False,
        ),
    ] = None,
    repo: Annotated[
        list[str] | None,
        typer.Option(
            "--repo",
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
    from mirror.audit import Severity

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
) -> tuple[list[RepositoryState], list[Finding]]:
    from mirror.audit import audit as run_audit
    from mirror.audit import gather
    from mirror.cli.job import Job
    from mirror.connect import acr_metadata, open_store
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


def _audit_json(states: list[RepositoryState], findings: list[Finding]) -> dict[str, Any]:
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


def _print_audit(states: list[RepositoryState], findings: list[Finding]) -> None:
    names = [f"{f.repository}:{f.tag}" for f in findings]
    width = max(map(len, names), default=0)
    rule_width = max((len(f.rule) for f in findings), default=0)
    for name, finding in zip(names, findings, strict=True):
        typer.echo(
            f"{finding.severity.value:<7}  {name:<{width}}  {finding.rule:<{rule_width}}  "
            f"{finding.message}"
        )
    scope = (
        f"{_count(sum(len(s.target) for s in states), 'tag')} "
        f"in {_count(len(states), 'repository', 'repositories')}"
    )
    if not findings:
        typer.echo(f"no findings: {scope} follow the policy")
        return
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    typer.echo(f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {scope}")


def _count(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else plural or word + 's'}"

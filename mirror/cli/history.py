"""`mirror history`: what a tag pointed to over time, from the ledger `mirror sync` writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mirror.cli.app import EXIT_FAILED, app, fail
from mirror.cli.options import ConfigOption, LedgerOption, Output, OutputOption, count, iso

if TYPE_CHECKING:
    from mirror.ledger import DriftEvent, Ledger, Period, PointedAt


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
            metavar="WHEN",
            help="Show what the tag pointed to at this moment: an ISO date (the end of that "
            "day, UTC) or date and time (2026-03-01T12:00; UTC unless an offset is given).",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="REGISTRY",
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
    from mirror.ledger import Ledger
    from mirror.settings.config import load_config

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
            f"{_when(event.last_seen)} ({count(event.runs, 'run')})"
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
        "first_seen": iso(period.first_seen),
        "last_seen": iso(period.last_seen),
        "mirrored": iso(period.mirrored),
    }


def _drift_json(event: DriftEvent) -> dict[str, Any]:
    return {
        "repository": event.repository,
        "tag": event.tag,
        "target_digest": event.target_digest,
        "source_digest": event.source_digest,
        "first_seen": iso(event.first_seen),
        "last_seen": iso(event.last_seen),
        "runs": event.runs,
    }


def _pointed_json(answer: PointedAt) -> dict[str, Any]:
    return {
        "repository": answer.repository,
        "tag": answer.tag,
        "at": iso(answer.when),
        "target_digest": answer.target_digest,
        "target_seen": iso(answer.target_seen),
        "mirrored": iso(answer.mirrored),
        "source_digest": answer.source_digest,
        "source_seen": iso(answer.source_seen),
        "specific": answer.specific,
    }

"""`mirror sync` and `mirror plan`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mirror import logs
from mirror.cli.app import EXIT_DRIFT, EXIT_FAILED, EXIT_PENDING, app, fail, usage_error
from mirror.cli.options import (
    AllowBackwardsOption,
    AllowOption,
    AllTagsOption,
    ConcurrencyOption,
    ConfigOption,
    FromManifestsOption,
    LedgerOption,
    LogFormat,
    Output,
    OutputOption,
    RepoOption,
    SetOption,
    SourceOption,
    TargetOption,
    count,
)
from mirror.cli.progress import reporter as make_reporter
from mirror.engine.connect import acr_metadata, open_store
from mirror.engine.job import Job
from mirror.engine.locks import lock_states
from mirror.engine.plan import ReferrerCopy, TagStep, plan_locks
from mirror.engine.provenance import owed_by_run, planned
from mirror.engine.referrers import Memory
from mirror.engine.sync import Preparation, SyncOutcome, prepare
from mirror.errors import MirrorError
from mirror.governance.named import DEBUG, LATEST
from mirror.transport.store import Store

if TYPE_CHECKING:
    from mirror.deployment.demand import Demand
    from mirror.engine.run import RunReport
    from mirror.ledger import Owed


@app.command(rich_help_panel="Mirroring")
def sync(
    source: SourceOption = None,
    target: TargetOption = None,
    repo: RepoOption = None,
    all_tags: AllTagsOption = False,
    concurrency: ConcurrencyOption = None,
    config: ConfigOption = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="Log lines in this format. Default: short sentences on a terminal, "
            "logfmt otherwise.",
            show_default=False,
        ),
    ] = None,
    allow_backwards: AllowBackwardsOption = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bars (default: on when stderr is a terminal; log lines otherwise).",
            show_default=False,
        ),
    ] = None,
    ledger: LedgerOption = None,
    from_manifests: FromManifestsOption = None,
    set_values: SetOption = None,
    allow: AllowOption = None,
) -> None:
    """Copy the selected tags from the source into the target, every platform, digests unchanged.

    Blobs go first, then per-platform manifests, then the index under its tag, so a
    tag in the target never points at incomplete content. An interrupted sync
    resumes: what is already in the target costs one request, no transfer. A specific tag (1.5.3) is
    never overwritten; when upstream rebuilt one, the sync holds it, reports the
    drift and exits with code 4. Every run is recorded in the ledger (see
    `mirror history`); a run that could not be recorded exits with code 1.
    """
    from mirror.engine.run import Runner
    from mirror.ledger import Ledger

    human = log_format is None and sys.stderr.isatty()
    logs.configure("human" if human else (log_format or LogFormat.logfmt).value)
    job = _job(
        config, source, target, repo, all_tags, concurrency, from_manifests, set_values, allow
    )
    bars = sys.stderr.isatty() if progress is None else progress
    with Ledger.open(ledger or job.config.ledger) as book:
        runner = Runner(job, book, allow_backwards=allow_backwards)
        with runner.exclusive() as mine:
            if not mine:
                logs.get_logger().info("run.skipped", target=job.target, reason="lock held")
                fail(f"another run is writing {job.target}; this one did nothing")
                return
            with make_reporter(bars) as reporter, _stopped_by_signals() as stop:
                report = runner.run(reporter, stop=stop)
        _finish(job, report, book.name, stop, human=human)


def _job(
    config: Path | None,
    source: str | None,
    target: str | None,
    repo: list[str] | None,
    all_tags: bool,
    concurrency: int | None,
    manifests: list[Path] | None,
    set_values: list[str] | None,
    allow: list[str] | None,
) -> Job:
    """The job the options describe; the images the manifests name but cannot be
    mirrored (a placeholder without a value) are logged as warnings."""
    if manifests and all_tags:
        raise usage_error("--all-tags and --from-manifests do not go together")
    values = {}
    for assignment in set_values or []:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            raise usage_error(f"--set {assignment!r}: write NAME=VALUE")
        values[name.strip()] = value
    for allowed in allow or []:
        if allowed not in (LATEST, DEBUG):
            raise usage_error(f"--allow {allowed!r}: one of latest, debug")
    job = Job.from_options(
        config,
        source,
        target,
        repo,
        all_tags,
        concurrency,
        deployments=True,
        manifests=manifests or (),
        values=values,
        allow=allow or (),
    )
    for passed in job.demand.unresolved if job.demand else []:
        logs.get_logger().warning(
            "deployment.unresolved",
            file=passed.file,
            line=passed.line,
            module=passed.module,
            image=passed.image,
            reason=passed.why,
        )
    return job


@contextmanager
def _stopped_by_signals() -> Iterator[Stop]:
    """While the block runs, SIGINT and SIGTERM stop the run at its next safe point (it
    is then recorded as interrupted); a second signal stops at once."""
    stop = Stop()

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signal = signum
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Stop(threading.Event):
    """The stop of a run, and the signal that asked for it."""

    signal: int | None = None


def _finish(job: Job, report: RunReport, ledger: str, stop: Stop, *, human: bool) -> None:
    """Say how the run went, and end with its exit code."""
    if stop.signal is not None:
        name = signal.Signals(stop.signal).name
        recorded = "recorded as interrupted" if report.recorded else "not recorded"
        fail(f"interrupted by {name} ({recorded}); run the same command again to resume")
        raise typer.Exit(128 + stop.signal)
    if report.error is not None:
        if report.ledger_error is not None:
            fail(f"error: {report.ledger_error}")
        raise report.error
    outcome = report.outcome
    assert outcome is not None
    _warn_unselected(job, outcome.steps)
    if human:
        _say(outcome, report.seconds)
    else:
        _report(outcome, report.seconds)
    if report.ledger_error is not None:
        fail(f"error: {report.ledger_error}")
    else:
        logs.get_logger().info("ledger.recorded", run=report.run_id, ledger=ledger)
    if not outcome.ok or report.ledger_error is not None:
        raise typer.Exit(EXIT_FAILED)
    if outcome.drift:
        raise typer.Exit(EXIT_DRIFT)


def _close(*stores: Store) -> None:
    for store in stores:
        store.close()


def _say(outcome: SyncOutcome, seconds: float) -> None:
    """The end of a run, for a person at a terminal: a sentence or two."""
    result = outcome.result
    checked = outcome.up_to_date
    if result.tags:
        extra = f", {count(len(result.referrers), 'referrer')}" if result.referrers else ""
        typer.echo(
            f"{count(len(result.tags), 'tag')} mirrored: {result.uploaded} blobs uploaded, "
            f"{result.mounted} mounted, {_size(result.bytes_copied)}{extra} "
            f"in {seconds:.1f} s ({checked} up to date)",
            err=True,
        )
    else:
        typer.echo(
            f"nothing to copy: {count(checked, 'tag')} up to date ({seconds:.1f} s)", err=True
        )
    for why, number, first in outcome.failure_summary():
        more = f" and {number - 1} more" if number > 1 else ""
        fail(f"failed: {first}{more}: {why}")
    if result.not_attempted:
        fail(f"{count(len(result.not_attempted), 'step')} not attempted: they need what failed")


def _size(number: int) -> str:
    """`525 MB`, `3.4 kB`: decimal units, as registries and docker report them."""
    size, unit = float(number), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            break
        size /= 1000
    return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"


def _report(outcome: SyncOutcome, seconds: float) -> None:
    result = outcome.result
    pending = [step for step in outcome.steps if step.pending]
    logs.get_logger().info(
        "sync.done",
        tags_written=len(result.tags),
        tags_planned=len(pending),
        tags_up_to_date=outcome.up_to_date,
        blobs_uploaded=result.uploaded,
        blobs_mounted=result.mounted,
        blobs_present=result.present,
        bytes=result.bytes_copied,
        manifests=result.manifests,
        failures=len(outcome.failures),
        not_attempted=len(result.not_attempted),
        seconds=round(seconds, 2),
    )
    for why, number, first in outcome.failure_summary():
        logs.get_logger().error("sync.failed", what=first, count=number, error=why)
    if result.not_attempted:
        logs.get_logger().error(
            "sync.not_attempted",
            count=len(result.not_attempted),
            reason="they need content that failed, or the run was stopped",
        )


@app.command(rich_help_panel="Mirroring")
def plan(
    source: SourceOption = None,
    target: TargetOption = None,
    repo: RepoOption = None,
    all_tags: AllTagsOption = False,
    concurrency: ConcurrencyOption = None,
    config: ConfigOption = None,
    allow_backwards: AllowBackwardsOption = False,
    ledger: LedgerOption = None,
    from_manifests: FromManifestsOption = None,
    set_values: SetOption = None,
    allow: AllowOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Show what a sync would do, per tag: create, update, skip or hold, and why; then
    the signatures, SBOMs and attestations it would bring along, and for which tag.

    Nothing is written. Exit code 0 when the target is up to date, 3 when changes
    are pending (including specific tags to lock on ACR, referrers to copy, and
    provenance records an earlier run could not attach), 4 when upstream rebuilt a
    specific tag (drift), 1 when something could not be looked at (a repository not
    listed, a manifest unfit, referrers not surveyed).
    """
    logs.configure()
    job = _job(
        config, source, target, repo, all_tags, concurrency, from_manifests, set_values, allow
    )
    found = _plan(job, allow_backwards, ledger)
    prepared, locks, records = found.prepared, found.locks, found.records
    _warn_unselected(job, prepared.steps)
    steps, referrers = prepared.steps, prepared.content.referrers
    for what, why in prepared.unlisted:
        logs.get_logger().error("plan.unlisted", what=what, error=why)
    if output == Output.json:
        entries = [_step_json(step, locks.get((step.repository, step.tag))) for step in steps]
        entries += [_referrer_json(copy) for copy in referrers]
        entries += [_record_json(debt) for debt in records]
        entries += _demand_json(job.demand, steps) if job.demand else []
        typer.echo(json.dumps(entries, indent=2))
    else:
        _print_plan(found)
        if job.demand is not None:
            _print_demand(job.demand, steps)
    if prepared.unlisted:  # a plan that could not look everywhere is not "up to date"
        raise typer.Exit(EXIT_FAILED)
    if any(step.drift for step in steps):
        raise typer.Exit(EXIT_DRIFT)
    if locks or referrers or records or any(step.pending for step in steps):
        raise typer.Exit(EXIT_PENDING)


@dataclass
class _Plan:
    """What a sync would do; the reason (ACR) each tag to be locked will be; the
    provenance records earlier runs owe that it would attach."""

    prepared: Preparation
    locks: dict[tuple[str, str], str]
    records: list[Owed]


def _plan(job: Job, allow_backwards: bool, ledger: str | None) -> _Plan:
    memory, owed = _recall(job, ledger)
    governance = job.governance(allow_backwards)
    source = open_store(job.source, job.config)
    target = open_store(job.target, job.config)
    try:
        prepared = prepare(
            source,
            target,
            job.repositories,
            select=job.selector(),
            governance=governance,
            concurrency=job.concurrency,
            memory=memory,
        )
        metadata = acr_metadata(target, job.config)
        states = lock_states(metadata, job.repositories) if metadata else {}
    finally:
        _close(source, target)
    locks = plan_locks(prepared.steps, states) if metadata else []
    reasons = {(lock.repository, lock.tag): lock.reason for lock in locks}
    return _Plan(prepared, reasons, planned(owed, prepared.steps, governance))


def _recall(job: Job, ledger: str | None) -> tuple[Memory | None, list[Owed]]:
    """What the ledger remembers of the target's referrers (None: tags up to date are
    then not asked about), and the provenance records owed there; each read on its own,
    so that a ledger that cannot answer one still answers the other."""
    from mirror.ledger import Ledger

    memory: Memory | None = None
    owed: list[Owed] = []
    try:
        with Ledger.open(ledger or job.config.ledger) as book:
            try:
                memory = book.referrer_memory(job.target)
            except MirrorError as error:
                logs.get_logger().warning("ledger.referrers_unread", error=str(error))
            try:
                owed = book.provenance_owed(job.target)
            except MirrorError as error:
                logs.get_logger().warning("ledger.provenance_unread", error=str(error))
    except MirrorError as error:
        logs.get_logger().warning("ledger.unread", error=str(error))
    return memory, owed


def _warn_unselected(job: Job, steps: list[TagStep]) -> None:
    """A repository with upstream tags of which the policy selects none is most likely
    a policy that does not say what was meant: warn, naming the rule."""
    for repository in job.repositories:
        mine = [step for step in steps if step.repository == repository]
        if mine and not any(step.source_digest or step.target_digest for step in mine):
            rule = None if job.all_tags else job.policy.rule_for(repository)
            named = f"rules[{job.policy.rules.index(rule)}]" if rule is not None else "no rule"
            logs.get_logger().warning(
                "policy.selects_nothing",
                repository=repository,
                rule=named,
                upstream_tags=len(mine),
                example=mine[0].reason,
            )


def _step_json(step: TagStep, lock: str | None) -> dict[str, object]:
    return {
        "repository": step.repository,
        "tag": step.tag,
        "action": step.action.value,
        "reason": step.reason,
        "kind": step.kind,
        "source_digest": step.source_digest,
        "target_digest": step.target_digest,
        "drift": step.drift,
        "lock": lock,
    }


def _referrer_json(copy: ReferrerCopy) -> dict[str, object]:
    return {
        "repository": copy.repository,
        "action": "referrer",
        "digest": copy.digest,
        "subject": copy.subject,
        "artifact_type": copy.manifest.artifact_type,
        "reason": copy.reason,
    }


def _record_json(debt: Owed) -> dict[str, object]:
    return {
        "repository": debt.repository,
        "tag": debt.tag,
        "action": "provenance",
        "digest": debt.digest,
        "reason": _owed_reason(debt),
    }


def _owed_reason(debt: Owed) -> str:
    return f"provenance record owed by run {owed_by_run(debt)[:8]}: attach it"


_COLOURS = {"create": "green", "update": "cyan", "hold": "red", "lock": "yellow"}


def _print_plan(plan: _Plan) -> None:
    steps, locks, records = plan.prepared.steps, plan.locks, plan.records
    referrers = plan.prepared.content.referrers
    named = [(s.repository, s.tag) for s in steps] + [(d.repository, d.tag) for d in records]
    width = max((len(f"{repository}:{tag}") for repository, tag in named), default=0)
    table = sys.stdout.isatty()  # a person reads it: a header, and colour on the actions
    if table and steps:
        typer.echo(typer.style(f"{'ACTION':<7} {'TAG':<{width}}  REASON", bold=True))
    for step in steps:
        name = f"{step.repository}:{step.tag}"
        lock = locks.get((step.repository, step.tag))
        reason = f"{step.reason}; then {lock}" if lock and step.pending else lock or step.reason
        action = "lock" if lock and not step.pending else step.action.value
        shown = typer.style(f"{action:<7}", fg=_COLOURS.get(action)) if table else f"{action:<7}"
        typer.echo(f"{shown} {name:<{width}}  {reason}")
    for copy in referrers:
        typer.echo(f"{'refer':<7} {copy.repository}@{copy.digest[:19]}  {copy.reason}")
    for debt in records:
        name = f"{debt.repository}:{debt.tag}"
        typer.echo(f"{'record':<7} {name:<{width}}  {_owed_reason(debt)}")
    counts = Counter(step.action.value for step in steps)
    summary = ", ".join(f"{counts[a]} {a}" for a in ("create", "update", "hold", "skip"))
    summary += f", {len(locks)} lock" if locks else ""
    summary += f", {count(len(referrers), 'referrer')}" if referrers else ""
    summary += f", {count(len(records), 'provenance record')}" if records else ""
    typer.echo(summary)


def _named_steps(steps: list[TagStep]) -> dict[tuple[str, str], TagStep]:
    return {(step.repository, step.tag): step for step in steps}


def _demand_json(demand: Demand, steps: list[TagStep]) -> list[dict[str, object]]:
    """Per image a manifest names: the step it became; per image passed over: why."""
    by_tag = _named_steps(steps)
    entries: list[dict[str, object]] = []
    for named in demand.named:
        step = by_tag.get((named.repository, named.reference))
        entries.append(
            {
                "action": "named",
                "file": named.file,
                "line": named.line,
                "module": named.module,
                "image": named.image,
                "repository": named.repository,
                "reference": named.reference,
                "step": step.action.value if step else None,
                "reason": step.reason if step else "not looked at",
            }
        )
    entries += [
        {
            "action": "unresolved" if passed.unresolved else "passed",
            "file": passed.file,
            "line": passed.line,
            "module": passed.module,
            "image": passed.image,
            "reason": passed.why,
        }
        for passed in demand.passed
    ]
    return entries


def _print_demand(demand: Demand, steps: list[TagStep]) -> None:
    """Per manifest, each image it names and what the sync does with it."""
    by_tag = _named_steps(steps)
    for file in demand.files:
        typer.echo(f"\n{file}:")
        for named in (n for n in demand.named if n.file == file):
            step = by_tag.get((named.repository, named.reference))
            action = step.action.value if step else "?"
            typer.echo(f"  {action:<7} {named.image}  (line {named.line}, {named.module})")
        for passed in (p for p in demand.passed if p.file == file):
            action = "unset" if passed.unresolved else "-"
            typer.echo(f"  {action:<7} {passed.image}  {passed.why}")

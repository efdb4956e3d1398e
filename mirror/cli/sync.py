"""`mirror sync` and `mirror plan`."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import typer

from mirror import logs
from mirror.cli.app import EXIT_DRIFT, EXIT_FAILED, EXIT_PENDING, app, fail
from mirror.config import Config, load_config
from mirror.connect import acr_metadata, open_store
from mirror.errors import ConfigError, MirrorError
from mirror.plan import Governance, TagStep, plan_locks
from mirror.policy import DEFAULT_POLICY, Policy, evaluate, load_policy
from mirror.progress import reporter as make_reporter
from mirror.sync import Selector, SyncOutcome, lock_states, observe, select_all
from mirror.sync import sync as run_sync
from mirror.transport.store import Store
from mirror.versions import Line


class LogFormat(StrEnum):
    logfmt = "logfmt"
    json = "json"


class Output(StrEnum):
    text = "text"
    json = "json"


SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Registry to copy from (host[:port], https://..., http:// for loopback) or oci:PATH. "
        "Default: mcr.microsoft.com.",
        show_default=False,
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="Registry or oci:PATH to copy into. Default: oci:./mirror-store.",
        show_default=False,
    ),
]
RepoOption = Annotated[
    list[str] | None,
    typer.Option(
        "--repo",
        help="Repository to mirror (repeatable). Default: azureiotedge-agent and azureiotedge-hub.",
        show_default=False,
    ),
]
AllTagsOption = Annotated[
    bool,
    typer.Option(
        "--all-tags",
        help="Select every upstream tag instead of the policy's selection "
        "(protections such as never overwriting a specific tag still apply).",
    ),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency", min=1, max=64, help="Blobs copied at once. Default: 8.", show_default=False
    ),
]
AllowBackwardsOption = Annotated[
    bool,
    typer.Option(
        "--allow-backwards",
        help="Let a rolling tag (1.5) follow upstream to an older or not-newest version.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML config file. Default: mirror.yaml in the working directory, if present.",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Job:
    """The effective settings of one run: config file overridden by flags."""

    config: Config
    source: str
    target: str
    repositories: tuple[str, ...]
    all_tags: bool
    concurrency: int

    @classmethod
    def from_options(
        cls,
        config_path: Path | None,
        source: str | None,
        target: str | None,
        repos: list[str] | None,
        all_tags: bool,
        concurrency: int | None,
    ) -> Job:
        config = load_config(config_path)
        overrides: dict[str, object] = {}
        if repos:
            overrides["repositories"] = tuple(repos)
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if overrides:
            config = Config.model_validate({**config.model_dump(), **overrides})
        return cls(
            config=config,
            source=source or config.source,
            target=target or config.target,
            repositories=config.repositories,
            all_tags=all_tags,
            concurrency=config.concurrency,
        )

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.config.policy or DEFAULT_POLICY)

    def selector(self) -> Selector:
        """The policy's selection, or every tag with `--all-tags`."""
        if self.all_tags:
            return select_all
        policy = self.policy
        lines = [Line.parse(line) for line in self.config.lines] if self.config.lines else None
        return lambda repository, tags: evaluate(policy, repository, tags, lines=lines)

    def governance(self, allow_backwards: bool = False) -> Governance:
        rules = {repo: self.policy.rule_for(repo) for repo in self.repositories}
        return Governance(
            on_rebuild={repo: rule.on_rebuild for repo, rule in rules.items() if rule},
            allow_backwards=allow_backwards,
            today=datetime.now(UTC).date(),
        )


def _validated(*args: Any) -> Job:
    try:
        return Job.from_options(*args)
    except ValueError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


@app.command()
def sync(
    source: SourceOption = None,
    target: TargetOption = None,
    repo: RepoOption = None,
    all_tags: AllTagsOption = False,
    concurrency: ConcurrencyOption = None,
    config: ConfigOption = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log line format when not on a terminal.")
    ] = LogFormat.logfmt,
    allow_backwards: AllowBackwardsOption = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bars (default: on when stderr is a terminal; log lines otherwise).",
            show_default=False,
        ),
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Where to record the run: a SQLite file or a SQLAlchemy URL "
            "(postgresql+psycopg://...). Default: the config's `ledger`, else "
            "$XDG_STATE_HOME/mirror/ledger.sqlite.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Copy the selected tags from the source into the target, every platform, digests unchanged.

    Blobs go first, then per-platform manifests, then the index under its tag, so a
    tag in the target never points at incomplete content. An interrupted sync
    resumes: what is already in the target costs one HEAD. A specific tag (1.5.3) is
    never overwritten; when upstream rebuilt one, the sync holds it, reports the
    drift and exits with code 4. Every run is recorded in the ledger (see
    `mirror history`); a run that could not be recorded exits with code 1.
    """
    job = _validated(config, source, target, repo, all_tags, concurrency)
    logs.configure(log_format.value)
    bars = sys.stderr.isatty() if progress is None else progress
    started, began = time.monotonic(), datetime.now(UTC)
    outcome = _sync(job, bars, allow_backwards)
    _report(outcome, time.monotonic() - started)
    recorded = _record(job, ledger, outcome, began)
    if not outcome.ok or not recorded:
        raise typer.Exit(EXIT_FAILED)
    if outcome.drift:
        raise typer.Exit(EXIT_DRIFT)


def _sync(job: Job, bars: bool, allow_backwards: bool) -> SyncOutcome:
    source = open_store(job.source, job.config)
    target = open_store(job.target, job.config, push=True)
    reporter = make_reporter(bars)
    try:
        with reporter:
            return run_sync(
                source,
                target,
                job.repositories,
                reporter,
                select=job.selector(),
                governance=job.governance(allow_backwards),
                concurrency=job.concurrency,
                metadata=acr_metadata(target, job.config),
            )
    finally:
        _close(source, target)


def _record(job: Job, location: str | None, outcome: SyncOutcome, began: datetime) -> bool:
    """Record the run (what it saw and what it wrote) in the ledger; False on failure,
    said on stderr, so the run's own result is still reported."""
    from mirror.ledger import Ledger

    try:
        with Ledger.open(location or job.config.ledger) as book:
            run = book.record_sync(
                source=job.source,
                target=job.target,
                steps=outcome.steps,
                written=outcome.result.tags,
                started=began,
                finished=datetime.now(UTC),
            )
    except MirrorError as exc:
        fail(f"error: {exc}")
        return False
    logs.get_logger().info("ledger.recorded", run=run, ledger=book.name)
    return True


def _close(*stores: Store) -> None:
    for store in stores:
        store.close()


def _report(outcome: SyncOutcome, seconds: float) -> None:
    result = outcome.result
    pending = [step for step in outcome.steps if step.pending]
    logs.get_logger().info(
        "sync.done",
        tags_written=len(result.tags),
        tags_planned=len(pending),
        tags_up_to_date=sum(1 for s in outcome.steps if s.action == "skip" and s.source_digest),
        blobs_uploaded=result.uploaded,
        blobs_mounted=result.mounted,
        blobs_present=result.present,
        bytes=result.bytes_copied,
        manifests=result.manifests,
        failures=len(result.failures),
        seconds=round(seconds, 2),
    )
    for what, message in result.failures:
        logs.get_logger().error("sync.failed", what=what, error=message)


@app.command()
def plan(
    source: SourceOption = None,
    target: TargetOption = None,
    repo: RepoOption = None,
    all_tags: AllTagsOption = False,
    config: ConfigOption = None,
    allow_backwards: AllowBackwardsOption = False,
    output: Annotated[Output, typer.Option("--output", "-o", help="text or json.")] = Output.text,
) -> None:
    """Show what a sync would do, per tag: create, update, skip or hold, and why.

    Nothing is written. Exit code 0 when the target is up to date, 3 when changes
    are pending (including specific tags to lock on ACR), 4 when upstream rebuilt a
    specific tag (drift).
    """
    job = _validated(config, source, target, repo, all_tags, None)
    steps, locks = _plan(job, allow_backwards)
    if output == Output.json:
        entries = [_step_json(step, locks.get((step.repository, step.tag))) for step in steps]
        typer.echo(json.dumps(entries, indent=2))
    else:
        _print_plan(steps, locks)
    if any(step.drift for step in steps):
        raise typer.Exit(EXIT_DRIFT)
    if locks or any(step.pending for step in steps):
        raise typer.Exit(EXIT_PENDING)


def _plan(job: Job, allow_backwards: bool) -> tuple[list[TagStep], dict[tuple[str, str], str]]:
    """The decision per tag, and (ACR) the reason each tag to be locked will be."""
    source = open_store(job.source, job.config)
    target = open_store(job.target, job.config)
    try:
        observation = observe(
            source, target, job.repositories, job.selector(), concurrency=job.concurrency
        )
        steps = observation.steps(job.governance(allow_backwards))
        metadata = acr_metadata(target, job.config)
        states = lock_states(metadata, job.repositories) if metadata else {}
    finally:
        _close(source, target)
    locks = plan_locks(steps, states) if metadata else []
    return steps, {(lock.repository, lock.tag): lock.reason for lock in locks}


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


def _print_plan(steps: list[TagStep], locks: dict[tuple[str, str], str]) -> None:
    width = max((len(f"{s.repository}:{s.tag}") for s in steps), default=0)
    for step in steps:
        name = f"{step.repository}:{step.tag}"
        lock = locks.get((step.repository, step.tag))
        reason = f"{step.reason}; then {lock}" if lock and step.pending else lock or step.reason
        action = "lock" if lock and not step.pending else step.action.value
        typer.echo(f"{action:<7} {name:<{width}}  {reason}")
    counts = Counter(step.action.value for step in steps)
    summary = ", ".join(f"{counts[a]} {a}" for a in ("create", "update", "hold", "skip"))
    typer.echo(f"{summary}, {len(locks)} lock" if locks else summary)

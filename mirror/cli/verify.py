"""`mirror verify`: check a mirror before trusting it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mirror import logs
from mirror.cli.app import app, usage_error
from mirror.cli.options import (
    ConcurrencyOption,
    ConfigOption,
    LedgerOption,
    Output,
    OutputOption,
    RepoOption,
    SourceOption,
    TargetOption,
    count,
)
from mirror.engine.job import Job
from mirror.engine.verify import Verification, mirrored_tags, verify_job
from mirror.transport.store import Store


@app.command("verify", rich_help_panel="Mirroring")
def verify_command(
    refs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[REF]...",
            help="REPO or REPO:TAG to check. Default: every tag of the target's repositories.",
            show_default=False,
        ),
    ] = None,
    source: SourceOption = None,
    target: TargetOption = None,
    repo: RepoOption = None,
    config: ConfigOption = None,
    concurrency: ConcurrencyOption = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Read every blob and check it against its digest.")
    ] = False,
    ledger: LedgerOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Check that the mirror holds what it should, before trusting it.

    Per tag: the target's digest is the one the ledger recorded; every manifest and
    blob is there (--deep: read and hashed); every signature, SBOM or attestation
    upstream lists for it is in the target and listed there for its subject; its
    provenance record is attached and names the same digest; upstream still serves
    the same digest (drift). Nothing is written.

    Exit code 0 when everything holds, else the most serious kind found:
    1 a registry could not be asked, 10 content missing or corrupt, 11 a tag moved in
    the target, 12 a referrer missing, 13 a provenance record missing or wrong,
    14 upstream drift.
    """
    from mirror.ledger import Ledger

    job = Job.from_options(config, source, target, repo, False, concurrency, deployments=True)
    logs.configure()
    with Ledger.open(ledger or job.config.ledger) as book:
        found = verify_job(
            job, book, choose=lambda store: _wanted(store, job, refs or []), deep=deep
        )
    _print(found, output)
    raise typer.Exit(found.exit_code)


def _wanted(target: Store, job: Job, refs: list[str]) -> list[tuple[str, str]]:
    """(repository, tag) pairs to check: those named, or every tag of each repository."""
    if not refs:
        return mirrored_tags(target, job.repositories)
    wanted = []
    for ref in refs:
        repository, _, tag = ref.partition(":")
        if not repository:
            raise usage_error(f"{ref!r}: give REPO or REPO:TAG")
        wanted += [(repository, tag)] if tag else mirrored_tags(target, [repository])
    return wanted


def _print(found: Verification, output: Output) -> None:
    if output == Output.json:
        document = {
            "tags": [{"repository": r, "tag": t, "digest": d} for r, t, d in found.tags],
            "findings": [finding.to_json() for finding in found.findings],
            "exit_code": found.exit_code,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    for finding in found.findings:
        typer.echo(f"{finding.kind:<10} {finding.repository}:{finding.tag}  {finding.detail}")
    verdict = "all hold" if not found.findings else count(len(found.findings), "finding")
    typer.echo(f"{count(len(found.tags), 'tag')} verified: {verdict}")

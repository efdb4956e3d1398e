"""`mirror serve`: run mirror as a service (see `mirror.service`)."""

from __future__ import annotations

from typing import Annotated

import typer

from mirror import logs
from mirror.cli.app import app
from mirror.cli.options import (
    AllTagsOption,
    ConcurrencyOption,
    ConfigOption,
    LedgerOption,
    LogFormat,
    RepoOption,
    SourceOption,
    TargetOption,
)


@app.command(rich_help_panel="Service")
def serve(
    source: SourceOption = None,
    target: TargetOption = None,
    repo: RepoOption = None,
    all_tags: AllTagsOption = False,
    concurrency: ConcurrencyOption = None,
    config: ConfigOption = None,
    ledger: LedgerOption = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="host:port to serve HTTP on. Default: the config's service.listen, "
            "else 127.0.0.1:8080.",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log line format.")
    ] = LogFormat.logfmt,
) -> None:
    """Run mirror as a service: sync on a schedule and whenever a new runtime release appears.

    Triggers: the schedules in the config's `service:` section (default every 6 hours),
    a run at start, the IoT Edge release feed (every 15 minutes), the rolling tags
    upstream (every 5 minutes), GitHub releases (off by default), and webhooks
    (/hooks/github, /hooks/acr, /hooks/sync). One sync runs at a time; triggers that
    arrive meanwhile make one follow-up run, scoped to what they touched. Serves
    /healthz, /readyz, /metrics, /status and a status page at /. SIGTERM lets the
    running copy reach a safe point (at most the grace period), then exits.
    """
    import uvicorn

    from mirror.engine.job import Job
    from mirror.ledger import Ledger
    from mirror.service.app import create_app
    from mirror.service.service import Service

    job = Job.from_options(config, source, target, repo, all_tags, concurrency, deployments=True)
    settings = job.config.service
    if listen is not None:
        settings = settings.model_validate({**settings.model_dump(), "listen": listen})
    logs.configure(log_format.value)
    with Ledger.open(ledger or job.config.ledger) as book:
        service = Service(job, book, settings)
        logs.get_logger().info("service.listen", address=settings.listen, ledger=book.name)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(service),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=5,  # open HTTP requests; the copy has its own grace
            )
        )
        server.run()

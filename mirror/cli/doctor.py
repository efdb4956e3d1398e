"""`mirror doctor`: check registry access against the production checklist."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from mirror.cli.app import EXIT_FAILED, app
from mirror.cli.options import ConfigOption, Output, OutputOption

if TYPE_CHECKING:
    from mirror.engine.doctor import Access, CheckResult
    from mirror.settings.config import Config
    from mirror.transport.store import RegistryLocation


@app.command(rich_help_panel="Registry")
def doctor(
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="REGISTRY",
            help="Registry to check. Default: the configured target.",
            show_default=False,
        ),
    ] = None,
    repo: Annotated[
        str | None,
        typer.Option(
            "--repo",
            metavar="NAME",
            help="Repository to check with. Default: the first configured one.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Check the target registry as the production checklist asks.

    The push identity (used by `mirror sync`) can push and, on ACR, lock tags; the
    pull identity (used by devices) can pull and is refused a push; it is neither the
    push identity nor the admin user; token lifetimes; the endpoints devices must
    reach. Each finding is pass, warn, fail or info, with what to do. Exit code 1
    when a check fails.
    """
    from mirror.errors import ConfigError
    from mirror.settings.config import load_config

    settings = load_config(config)
    text = target or settings.target
    if text.startswith("oci:"):
        raise ConfigError("mirror doctor checks a registry; the target is an OCI layout")
    findings = run_doctor(settings, text, repo or settings.repositories[0])
    if output is Output.json:
        typer.echo(json.dumps([_as_json(f) for f in findings], indent=2))
    else:
        _print(findings)
    if any(f.status == "fail" for f in findings):
        raise typer.Exit(EXIT_FAILED)


def run_doctor(config: Config, target: str, repository: str) -> list[CheckResult]:
    """Open the registry once per identity and run the checks."""
    from mirror.engine.connect import host_of, is_acr_registry
    from mirror.engine.doctor import diagnose
    from mirror.transport.store import RegistryLocation, parse_location

    registry = config.registry(host_of(target))
    location = parse_location(target, insecure=registry.insecure)
    assert isinstance(location, RegistryLocation)
    push = _side(config, location, push=True)
    pull = _side(config, location, push=False) if registry.pull is not None else None
    try:
        return diagnose(push, pull, repository, acr=is_acr_registry(location.endpoint, registry))
    finally:
        push.client.close()
        if pull is not None:
            pull.client.close()


def _side(config: Config, location: RegistryLocation, *, push: bool) -> Access:
    from mirror.engine.connect import identity_tokens, open_registry, token_source
    from mirror.engine.doctor import Access
    from mirror.transport.acr.tokens import AcrTokens
    from mirror.transport.identities import BasicLogin

    settings = config.registry(location.endpoint.host)
    identity = settings.push if push else settings.pull
    if identity is not None:
        source = identity_tokens(identity, location.endpoint, settings)
        describe = f"the {'push' if push else 'pull'} identity ({identity.describe()})"
    else:
        source = token_source(location.endpoint, settings, push=push)
        describe = f"the {'push' if push else 'pull'} identity (from {_origin(settings)})"
    client = open_registry(location, settings, config, push=push, source=source)
    username = identity.username if isinstance(identity, BasicLogin) else settings.username
    tokens = source if isinstance(source, AcrTokens) else None
    return Access(client, describe, username, tokens)


def _origin(settings: object) -> str:
    username = getattr(settings, "username", None)
    return f"user {username}" if username else "docker login or the Azure default credential"


def _as_json(finding: CheckResult) -> dict[str, str]:
    return {
        "check": finding.check,
        "status": finding.status.value,
        "message": finding.message,
        "advice": finding.advice,
    }


def _print(findings: list[CheckResult]) -> None:
    width = max(len(f.check) for f in findings)
    for finding in findings:
        typer.echo(f"{finding.status.value.upper():<5} {finding.check:<{width}}  {finding.message}")
        if finding.advice and finding.status != "pass":
            typer.echo(f"{'':<5} {'':<{width}}  -> {finding.advice}")

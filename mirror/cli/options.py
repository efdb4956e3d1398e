"""Options shared by several commands, so each reads and behaves the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class LogFormat(StrEnum):
    logfmt = "logfmt"
    json = "json"


class Output(StrEnum):
    text = "text"
    json = "json"


OutputOption = Annotated[
    Output, typer.Option("--output", "-o", metavar="text|json", help="text or json.")
]


SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        metavar="REGISTRY",
        help="Registry to copy from (host[:port], https://..., http:// for loopback) or oci:PATH. "
        "Default: mcr.microsoft.com.",
        show_default=False,
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        metavar="REGISTRY",
        help="Registry or oci:PATH to copy into. Default: oci:./mirror-store.",
        show_default=False,
    ),
]
RepoOption = Annotated[
    list[str] | None,
    typer.Option(
        "--repo",
        metavar="NAME",
        help="Repository to mirror (repeatable). Default: azureiotedge-agent and azureiotedge-hub.",
        show_default=False,
    ),
]
AllTagsOption = Annotated[
    bool,
    typer.Option(
        "--all-tags",
        help="Select every upstream tag instead of the policy's selection. Protections "
        "still apply: a specific tag is never overwritten (a rebuild is held), a rolling "
        "tag only moves forward.",
    ),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        metavar="N",
        min=1,
        max=64,
        help="Blobs copied at once. Default: 8.",
        show_default=False,
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
        metavar="FILE",
        help="YAML config file. Default: mirror.yaml in the working directory, if present.",
        show_default=False,
    ),
]
LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        metavar="FILE|URL",
        help="The ledger: a SQLite file or a SQLAlchemy URL (postgresql+psycopg://...). "
        "Default: the config's `ledger`, else $XDG_STATE_HOME/mirror/ledger.sqlite.",
        show_default=False,
    ),
]


def count(number: int, word: str, plural: str | None = None) -> str:
    """`1 tag`, `2 tags`."""
    return f"{number} {word if number == 1 else plural or word + 's'}"


FromManifestsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--from-manifests",
        metavar="FILE",
        help="Mirror exactly the images these deployment manifests pull from "
        "mcr.microsoft.com (repeatable; a directory means its *.json files), plus what "
        "the policy selects for the configured repositories they name. Default: the "
        "config's `deployments`, on top of the policy's selection.",
        show_default=False,
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="NAME=VALUE",
        help="A value for a placeholder in the manifests (${NAME}, $NAME, <NAME>, "
        "__NAME__, #{NAME}#); repeatable. The environment is read too. An image whose "
        "placeholder has no value is reported and skipped.",
        show_default=False,
    ),
]
AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        metavar="latest|debug",
        help="Mirror a `latest` or debug image a manifest names (repeatable); by default "
        "they are reported, not mirrored.",
        show_default=False,
    ),
]


def iso(moment: datetime | None) -> str | None:
    """A moment for JSON output: ISO 8601 in UTC, or null."""
    return None if moment is None else moment.astimezone(UTC).isoformat()

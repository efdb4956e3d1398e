"""The typer application, shared options, and how errors end a command.

Every `MirrorError` ends the command with one line on stderr and its exit code; an
interrupted run says how to resume. Exit codes: 0 done, 1 failed, 2 bad input or
config, 3 changes pending (`mirror plan`), 4 drift (upstream rebuilt a specific tag),
130 interrupted.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import types
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError

from mirror.errors import ConfigError, MirrorError
from mirror.redact import redact

# The command modules, in the order --help lists them.
COMMAND_MODULES = ("sync", "verify", "history", "tags", "rewrite", "lint", "doctor", "serve")
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PENDING = 3
EXIT_DRIFT = 4
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="mirror",
    help=(
        "Keep Azure IoT Edge runtime images (edgeAgent, edgeHub) in your own registry: "
        "copy them byte for byte, govern their tags, point deployments at the mirror."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str) -> None:
    """Print one error line on stderr (secrets in it hidden)."""
    typer.echo(f"mirror: {redact(message)}", err=True)


def _start_lightly() -> None:
    """Skip two import-time costs that buy the command line nothing; start-up time is
    part of every scheduled no-op sync. This is the program's choice, made here rather
    than in the package, so that importing `mirror` changes nothing for anyone else.

    - httpx imports its own command-line client (click, rich, pygments) on import;
      with this placeholder it falls back to a stub `httpx.main`, never called.
    - pydantic scans every installed distribution for plugins when it builds the first
      model; mirror uses none.
    """
    sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main"))
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def main() -> None:
    """Entry point of the `mirror` console script."""
    _start_lightly()
    gc.disable()
    for name in COMMAND_MODULES:  # importing a module registers its commands, in order
        importlib.import_module(f"mirror.cli.{name}")
    # What the imports built lives as long as the process: keep it out of every later
    # collection (and out of the one at exit). A no-op sync is 10-20 % faster.
    gc.freeze()
    gc.enable()

    try:
        app()
    except MirrorError as exc:
        fail(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume")
        sys.exit(EXIT_INTERRUPTED)


def usage_error(message: str) -> typer.Exit:
    """Say what is wrong with the command line in one line; raise the result (exit 2)."""
    fail(f"error: {message}")
    return typer.Exit(EXIT_USAGE)


def config_error(exc: ValidationError, section: str) -> ConfigError:
    """The first problem pydantic found, as one line naming the config key."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in (section, *first["loc"][:1]))
    message = str(first["msg"]).removeprefix("Value error, ")
    return ConfigError(f"{where}: {message}")

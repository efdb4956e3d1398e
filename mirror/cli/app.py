"""The typer application, its global options, and how errors end a command.

Every `MirrorError` ends the command with one line on stderr and its exit code, and so
does a usage error (`mirror: error: --concurrency: ...`, exit 2, with a pointer to the
command's `--help`); `--help` itself is plain text that wraps to the terminal. An
interrupted run says how to resume. Exit codes: 0 done, 1 failed, 2 bad input or
config, 3 changes pending (`mirror plan`), 4 drift (upstream rebuilt a specific tag),
130 interrupted.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import re
import sys
import types
from typing import TYPE_CHECKING, Annotated

import typer

# typer 0.29 carries its own copy of click; usage errors are raised from there.
from typer._click import exceptions as click

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
    rich_markup_mode=None,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit


def version_text() -> str:
    """`mirror --version`: this program's version, and those of what it ships."""
    from mirror import __version__
    from mirror.governance.policy import DEFAULT_POLICY, load_policy
    from mirror.governance.releases import embedded_feed

    policy = load_policy(DEFAULT_POLICY)
    agents = embedded_feed().image_versions("azureiotedge-agent")
    newest = f"edgeAgent {agents[-1]}" if agents else "no edgeAgent"
    return "\n".join(
        (
            f"mirror {__version__}",
            f"policy {DEFAULT_POLICY.stem} (format {policy.version})",
            f"release feed: the shipped copy, newest {newest}",
        )
    )


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the versions of mirror, its shipped policy and release feed.",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors in the log.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every event in the log, details too.")
    ] = False,
) -> None:
    """Keep Azure IoT Edge runtime images (edgeAgent, edgeHub) in your own registry:
    copy them byte for byte, govern their tags, point deployments at the mirror."""
    from mirror import logs

    if quiet and verbose:
        raise usage_error("--quiet and --verbose do not go together")
    logs.set_level(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


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
        code = app(prog_name="mirror", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        fail(usage_line(exc))
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        fail(f"error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        fail("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except MirrorError as exc:
        fail(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def usage_line(exc: click.UsageError) -> str:
    """A usage error as one line: what is wrong, and where the help is."""
    message = " ".join(exc.format_message().split())
    missing = isinstance(exc, click.MissingParameter)
    if isinstance(exc, click.BadParameter) and exc.param is not None and not missing:
        names = sorted(exc.param.opts, key=len)
        message = f"{names[-1] if names else exc.param.name}: {_plainly(exc.message)}"
    command = exc.ctx.command_path if exc.ctx is not None else "mirror"
    return f"error: {message} (see '{command} --help')"


_PLAINLY = (
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be >= \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be <= \1"),
    (re.compile(r"Input should be a valid integer.*"), "must be a whole number"),
    (re.compile(r"\.$"), ""),
)


def _plainly(message: str) -> str:
    """The validator's words, as a person would say them."""
    for pattern, replacement in _PLAINLY:
        message = pattern.sub(replacement, message)
    return " ".join(message.split())


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

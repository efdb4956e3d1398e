"""`mirror rewrite`: point deployment manifests at the mirror.

`mirror sync` loads this module too, so only typer and the standard library are
imported here; the deployment logic, the config and the registry client are imported
when the command runs.

The files are worked through one by one, deployment manifests (JSON) and device
configs (`/etc/aziot/config.toml`, see `mirror.deployment.device`) alike: a file that
cannot be read, parsed or recognised gets one error line naming it, and the other
files are still processed. `--print-check-command` prints the `iotedge check` line
that takes its diagnostics image from the mirror instead. Exit codes: 0 done, 1 a
file failed (or, with `--check`, would change), 2 bad options or config.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mirror.cli.app import EXIT_FAILED, app, config_error, fail, usage_error
from mirror.cli.options import ConfigOption

if TYPE_CHECKING:
    from mirror.deployment.availability import AvailabilityCheck
    from mirror.deployment.resolvers import PinMode, Resolver, Target
    from mirror.deployment.rewrite import RewriteResult
    from mirror.deployment.settings import RewriteSettings
    from mirror.governance.versions import Line, Version
    from mirror.ledger import Ledger
    from mirror.settings.config import Config
    from mirror.transport.store import Store


class Pin(StrEnum):
    tag = "tag"
    specific = "specific"
    digest = "digest"


@app.command(rich_help_panel="Deployments")
def rewrite(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Deployment manifests (JSON) and device configs (/etc/aziot/config.toml: "
            "a *.toml file, or TOML with an [agent] table) to rewrite.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            metavar="HOST",
            help="The mirror devices pull from: a registry host (myacr.azurecr.io, "
            "localhost:5000), optionally with the repository prefix `mirror sync` wrote "
            "under (myacr.azurecr.io/edge). "
            "Default: `target` in the config.",
            show_default=False,
        ),
    ] = None,
    pin: Annotated[
        Pin,
        typer.Option(
            "--pin",
            help="tag: keep each tag as written. specific: a rolling tag (1.5) becomes the "
            "specific version it means in the mirror now (1.5.3). digest: "
            "name@sha256:<index digest> in the mirror (the form edgeAgent accepts).",
        ),
    ] = Pin.tag,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Do not contact the registry: no check that the images are there. "
            "Only --pin tag, or tags and digests that are already pinned.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the rewritten manifest to this file (one input file). "
            "Default: standard output.",
            show_default=False,
        ),
    ] = None,
    in_place: Annotated[
        bool,
        typer.Option("--in-place", help="Rewrite the files themselves (only those that change)."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 when a file would change (for CI).",
        ),
    ] = False,
    diff: Annotated[
        bool,
        typer.Option(
            "--diff",
            help="Print a unified diff (passwords hidden) instead of the manifest; "
            "with --in-place or -o, print it as well as writing.",
        ),
    ] = False,
    mirrored: Annotated[
        list[str] | None,
        typer.Option(
            "--mirrored",
            metavar="GLOB",
            help="Glob over registry/repository of the images to point at the mirror "
            "(repeatable; replaces rewrite.sources), e.g. 'mcr.microsoft.com/*'. "
            "Default: mcr.microsoft.com/azureiotedge-*.",
            show_default=False,
        ),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform",
            metavar="OS/ARCH",
            help="A platform the fleet needs, os/arch or os/arch/variant (repeatable; replaces "
            "rewrite.platforms). Default: linux/amd64, linux/arm64, linux/arm/v7.",
            show_default=False,
        ),
    ] = None,
    credentials: Annotated[
        bool | None,
        typer.Option(
            "--credentials/--no-credentials",
            help="Add or update the registryCredentials entry of the mirror, with "
            "placeholders for the pull identity. Default: rewrite.credentials (on).",
            show_default=False,
        ),
    ] = None,
    print_check_command: Annotated[
        bool,
        typer.Option(
            "--print-check-command",
            help="Rewrite nothing: print the `iotedge check` command that runs the "
            "diagnostics image from the mirror (REGISTRY/azureiotedge-diagnostics:"
            "DAEMON-VERSION), for devices that cannot reach mcr.microsoft.com. The "
            "version is --daemon-version, else the daemon the release feed pairs with the "
            "agent image's line in the FILEs (config.toml), else the newest stable release. "
            "Unless --offline, the image is first looked up in the mirror.",
        ),
    ] = False,
    daemon_version: Annotated[
        str | None,
        typer.Option(
            "--daemon-version",
            metavar="X.Y.Z",
            help="With --print-check-command: the devices' IoT Edge daemon version "
            "(`iotedge version`), which names the diagnostics image.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Point edgeAgent, edgeHub and every mirrored module image at the mirror.

    `mcr.microsoft.com/azureiotedge-agent:1.5` becomes `<registry>/azureiotedge-agent:1.5`
    (or the specific version, or the digest, with --pin). The registryCredentials
    entry of the mirror gets $MIRROR_PULL_USERNAME / $MIRROR_PULL_PASSWORD style
    placeholders, never a secret. Nothing else in the file changes, byte for byte;
    rewriting a rewritten file changes nothing. Signed manifests are refused.

    Unless --offline, every rewritten image is first looked up in the mirror: a file
    whose images are missing there, or lack a platform the fleet needs, is not
    written, and the command exits 1.

    A device config (config.toml) gets its [agent.config] image pointed at the mirror
    the same way, and [agent.config.auth] set to the mirror's host and the pull
    identity's placeholders (the table is added when absent); comments, order and
    layout of the rest of the file stay as they are.
    """
    if print_check_command:
        _print_check_command(
            files or [], registry=registry, offline=offline, daemon=daemon_version, path=config
        )
        return
    if daemon_version is not None:
        raise usage_error("--daemon-version goes with --print-check-command")
    if not files:
        raise usage_error("name at least one FILE to rewrite (or use --print-check-command)")
    if in_place and output is not None:
        raise usage_error("--in-place and --output exclude each other")
    if check and (in_place or output is not None):
        raise usage_error("--check writes nothing: drop --in-place / --output")
    to_stdout = not (in_place or check or diff) or output is not None
    if to_stdout and len(files) > 1:
        raise usage_error(
            f"{len(files)} files given: standard output and --output take one; "
            "use --in-place, --check or --diff for several"
        )
    job = _RewriteJob.create(
        config_path=config,
        registry=registry,
        pin=pin,
        offline=offline,
        mirrored=mirrored,
        platforms=platform,
        credentials=credentials,
    )
    try:
        failed = would_change = False
        for path in files:
            result = job.run(path)
            if result is None:
                failed = True
                continue
            would_change |= result.changed
            if not _emit(result, job, output=output, in_place=in_place, check=check, diff=diff):
                failed = True
    finally:
        job.close()
    if failed or (check and would_change):
        raise typer.Exit(EXIT_FAILED)


@dataclass
class _Done:
    """One file rewritten and checked, ready to be written; `secrets` are the texts a
    printed diff hides, `credentials` names what holds the pull credential."""

    path: Path
    result: RewriteResult
    secrets: tuple[str, ...]
    credentials: str = "the registryCredentials entry"

    @property
    def changed(self) -> bool:
        return self.result.changed


@dataclass
class _RewriteJob:
    """The settings of one `mirror rewrite` run, and the registry it talks to."""

    target: Target
    settings: RewriteSettings
    pin: PinMode
    resolver: Resolver
    store: Store | None
    availability: AvailabilityCheck | None
    ledger: Ledger | None = None

    @classmethod
    def create(
        cls,
        *,
        config_path: Path | None,
        registry: str | None,
        pin: Pin,
        offline: bool,
        mirrored: list[str] | None,
        platforms: list[str] | None,
        credentials: bool | None,
    ) -> _RewriteJob:
        from mirror.deployment.availability import AvailabilityCheck
        from mirror.deployment.lookups import RegistryLookup
        from mirror.deployment.resolvers import PinMode, PinningResolver, TagResolver
        from mirror.deployment.settings import RewriteSettings
        from mirror.settings.config import load_config

        config = load_config(config_path)
        overrides: dict[str, Any] = {}
        if mirrored:
            overrides["sources"] = mirrored
        if platforms:
            overrides["platforms"] = platforms
        if credentials is not None:
            overrides["credentials"] = credentials
        settings = _validate(
            RewriteSettings, {**config.rewrite.model_dump(), **overrides}, "rewrite"
        )
        target, endpoint = _target(registry or config.target, config)
        if offline and pin is Pin.tag:
            return cls(target, settings, PinMode.TAG, TagResolver(target), None, None)
        if offline:  # pin what the ledger says the last syncs found
            from mirror.deployment.lookups import LedgerLookup
            from mirror.ledger import Ledger

            ledger = Ledger.open(config.ledger)
            recorded = LedgerLookup(ledger, registry or config.target)
            resolver = PinningResolver(target, recorded, origin=f"the ledger {ledger.name}")
            return cls(target, settings, PinMode(pin.value), resolver, None, None, ledger)
        from mirror.engine.connect import open_store

        store = open_store(endpoint, config)
        lookup = RegistryLookup(store, target)
        resolver = PinningResolver(target, lookup, origin=str(target))
        availability = AvailabilityCheck(store, tuple(settings.platforms))
        return cls(target, settings, PinMode(pin.value), resolver, store, availability)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        if self.ledger is not None:
            self.ledger.close()

    def run(self, path: Path) -> _Done | None:
        """Rewrite one file and check the result; None (errors printed) when it failed."""
        from mirror.deployment.errors import DeploymentFileError

        try:
            done = self._rewrite(path)
        except DeploymentFileError as exc:
            fail(f"error: {exc}")
            return None
        problems = self._problems(done.result)
        for problem in problems:
            fail(f"error: {problem}")
        if problems:
            fail(f"{done.result.file}: not rewritten")
            return None
        return done

    def _rewrite(self, path: Path) -> _Done:
        """Rewrite one file, a device config or a deployment manifest, as it is."""
        from mirror.deployment.device import (
            DeviceConfig,
            device_secrets,
            read_deployment_file,
            rewrite_device_config,
        )
        from mirror.deployment.rewrite import rewrite_manifest, secret_literals
        from mirror.deployment.shape import load_manifest

        read = read_deployment_file(path)
        if isinstance(read, DeviceConfig):
            result = rewrite_device_config(
                read, self.target, pin=self.pin, resolver=self.resolver, settings=self.settings
            )
            return _Done(path, result, device_secrets(read), "[agent.config.auth]")
        manifest = load_manifest(read)
        result = rewrite_manifest(
            manifest, self.target, pin=self.pin, resolver=self.resolver, settings=self.settings
        )
        return _Done(path, result, secret_literals(manifest))

    def _problems(self, result: RewriteResult) -> list[str]:
        from mirror.deployment.edits import ChangeKind
        from mirror.deployment.images import classify
        from mirror.deployment.rewrite import Reason

        problems = [
            f"{result.file}:{left.line}: {left.detail}"
            for left in result.left_alone
            if left.reason is Reason.UNRESOLVED
        ]
        for change in result.changes:
            if change.kind is not ChangeKind.IMAGE:
                continue
            if change.note:
                typer.echo(f"{result.file}:{change.line}: note: {change.note}", err=True)
            reference = classify(change.new).reference
            if self.availability is None or reference is None:
                continue
            found = self.availability(reference)
            if not found.ok:
                problems.append(f"{result.file}:{change.line}: {change.new}: {found.message}")
        return problems


def _validate(model: Any, data: dict[str, Any], section: str) -> Any:
    """`model` validated from `data`; a `ConfigError` with the first problem otherwise."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, section) from None


def _target(text: str, config: Config) -> tuple[Target, str]:
    """The mirror as it appears in image strings, and the address to reach its registry."""
    from mirror.deployment.resolvers import Target
    from mirror.engine.connect import host_of
    from mirror.errors import ConfigError
    from mirror.transport.store import LayoutLocation, parse_location

    location = parse_location(text, insecure=config.registry(host_of(text)).insecure)
    if isinstance(location, LayoutLocation):
        raise ConfigError(
            f"the target {text} is an OCI layout directory, not a registry devices can pull"
            " from: name the registry with --registry HOST[/PREFIX] or `target` in the config"
        )
    target = Target.parse(f"{location.endpoint.host}/{location.prefix}")
    return target, str(location.endpoint)


def _emit(
    done: _Done, job: _RewriteJob, *, output: Path | None, in_place: bool, check: bool, diff: bool
) -> bool:
    """Print or write one rewritten file as the options ask; False if writing failed."""
    result = done.result
    if diff:
        typer.echo(result.diff(redact=done.secrets), nl=False)
    summary = _summary(done, job)
    if check:
        if result.changed:
            typer.echo(f"{result.file}: would rewrite {summary}", err=True)
        return True
    try:
        if output is not None:
            write_file(output, result.encode(), like=None)
            what = f"rewrote {summary}" if result.changed else "unchanged"
            typer.echo(f"{result.file}: {what}; written to {output}", err=True)
        elif in_place:
            if result.changed:
                write_file(done.path, result.encode(), like=done.path)
                typer.echo(f"{result.file}: rewrote {summary}", err=True)
            else:
                typer.echo(f"{result.file}: unchanged", err=True)
        elif not diff:
            sys.stdout.flush()
            sys.stdout.buffer.write(result.encode())
            sys.stdout.buffer.flush()
    except OSError as exc:
        where = output if output is not None else done.path
        fail(f"error: {where}: cannot write: {exc.strerror or exc}")
        return False
    return True


def _summary(done: _Done, job: _RewriteJob) -> str:
    from mirror.deployment.edits import ChangeKind

    result = done.result
    images = sum(1 for c in result.changes if c.kind is ChangeKind.IMAGE)
    parts = [f"{images} image{'' if images == 1 else 's'} to {job.target}"] if images else []
    if any(c.kind is ChangeKind.CREDENTIAL for c in result.changes):
        parts.append(done.credentials)
    return " and ".join(parts) or "nothing"


# -- the iotedge check command -------------------------------------------------------


def _print_check_command(
    files: list[Path], *, registry: str | None, offline: bool, daemon: str | None, path: Path | None
) -> None:
    """Print `iotedge check --diagnostics-image-name <mirror>/azureiotedge-diagnostics:<v>`.

    `iotedge check` pulls its diagnostics image from mcr.microsoft.com, tagged with the
    daemon's version, unless told otherwise: a device that only reaches the mirror
    needs the command line this prints.
    """
    from mirror.deployment.resolvers import format_image
    from mirror.governance.releases import DIAGNOSTICS_IMAGE
    from mirror.settings.config import load_config

    config = load_config(path)
    target, endpoint = _target(registry or config.target, config)
    version = _daemon_version(daemon) if daemon is not None else _paired_version(files)
    repository = target.repository_for(DIAGNOSTICS_IMAGE)
    image = format_image(target.registry, repository, str(version), None)
    if not offline:
        _check_in_mirror(image, endpoint, config)
    typer.echo(f"iotedge check --diagnostics-image-name {image}")


def _daemon_version(text: str) -> Version:
    from mirror.governance.versions import TagKind, Version, parse_tag

    tag = parse_tag(text.strip())
    if tag.kind is not TagKind.SPECIFIC or tag.arch or tag.debug:
        raise usage_error(
            f"--daemon-version {text!r}: give the daemon's version as X.Y.Z"
            " (`iotedge version` prints it), e.g. 1.5.21"
        )
    return Version.parse(text.strip())


def _paired_version(files: list[Path]) -> Version:
    """The diagnostics version the shipped release feed pairs with the agent line of
    the device configs in `files`, else with the newest stable release."""
    from mirror.governance.releases import embedded_feed, paired_diagnostics

    lines = _agent_lines(files)
    if len(lines) > 1:
        shown = ", ".join(sorted(str(line) for line in lines))
        raise usage_error(
            f"the device configs run different runtime lines ({shown}):"
            " give --daemon-version, or one line's configs at a time"
        )
    line = next(iter(lines), None)
    version = paired_diagnostics(embedded_feed(), line)
    if version is None:
        raise usage_error(
            f"the release feed lists no IoT Edge release of the {line} line:"
            " give the devices' daemon version with --daemon-version"
        )
    return version


def _agent_lines(files: list[Path]) -> set[Line]:
    """The runtime lines (X.Y) the agent images of the device configs name."""
    from mirror.deployment.device import read_if_device_config
    from mirror.deployment.errors import DeploymentFileError
    from mirror.deployment.images import classify
    from mirror.governance.versions import parse_tag

    lines: set[Line] = set()
    for path in files:
        try:
            device = read_if_device_config(path)
        except DeploymentFileError as exc:
            raise usage_error(str(exc)) from None
        if device is None:
            raise usage_error(f"{path}: not a device config (config.toml with an [agent] table)")
        tag = classify(device.image or "").literal_tag
        line = parse_tag(tag).line if tag else None
        if line is not None:
            lines.add(line)
    return lines


def _check_in_mirror(image: str, endpoint: str, config: Config) -> None:
    """Exit 1 (one error line) unless the mirror serves `image`."""
    from mirror.deployment.availability import AvailabilityCheck
    from mirror.deployment.images import classify
    from mirror.deployment.settings import RewriteSettings
    from mirror.engine.connect import open_store

    reference = classify(image).reference
    assert reference is not None
    settings = _validate(RewriteSettings, config.rewrite.model_dump(), "rewrite")
    store = open_store(endpoint, config)
    try:
        found = AvailabilityCheck(store, tuple(settings.platforms))(reference)
    finally:
        store.close()
    if not found.ok:
        fail(
            f"error: {image}: {found.message} (mirror the diagnostics image:"
            " mirror sync --repo azureiotedge-diagnostics)"
        )
        raise typer.Exit(EXIT_FAILED)


def write_file(path: Path, data: bytes, like: Path | None) -> None:
    """Replace `path` with `data` in one step (a reader never sees half a file);
    `like` gives the permission bits to keep."""
    from mirror.files import new_file_mode, write_atomically

    mode = like.stat().st_mode & 0o7777 if like is not None else new_file_mode()
    write_atomically(path, [data], mode=mode)


# -- lint ----------------------------------------------------------------------------

"""Lint rules about how containers are created: the createOptions format, log limits,
host storage, privileges and debugger ports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mirror.deployment.create_options import CHUNK_SIZE, CreateOptions, Form
from mirror.deployment.lint.context import Check, Issue, LintContext, describe
from mirror.deployment.shape import Located, ModuleEntry, Role, at_member

DEBUG_PORTS = {5678, 9229, 5005, *range(4020, 4027)}
LOG_DRIVERS_WITH_FILES = {"json-file", "local"}
DOCKER_SOCKET = "docker.sock"


def options_location(module: ModuleEntry, *keys: str) -> Located:
    """Where to report about `keys` inside a module's create options.

    The node itself when the options are an object (template form), else the first
    createOptions chunk, else the module's settings (or the module).
    """
    options = module.create_options
    first = options.first
    base = module.settings or module.located
    if first is None:
        return Located(base.node, f"{base.path}.createOptions", base.anchor)
    located = at_member(first, f"{base.path}.{first.key}")
    for key in keys:
        child = located.child(key)
        if child is None:
            break
        located = child
    return located


def create_options_format(ctx: LintContext) -> Iterator[Issue]:
    for module in ctx.manifest.modules:
        options = module.create_options
        if options.form is Form.ABSENT:
            continue
        where = options_location(module)
        if options.form is Form.OBJECT and ctx.deployable:
            yield ctx.issue(
                "create-options-format",
                where,
                f"createOptions of {describe(module)} must be a JSON string in a deployable"
                " manifest: stringify it (iotedgedev genconfig does) or lint it as a template",
            )
        if options.error:
            yield ctx.issue("create-options-format", where, f"{describe(module)}: {options.error}")
        for problem in options.naming_problems:
            yield ctx.issue("create-options-format", where, f"{describe(module)}: {problem}")
        if ctx.deployable:
            yield from _oversized(ctx, module, options)


def _oversized(ctx: LintContext, module: ModuleEntry, options: CreateOptions) -> Iterator[Issue]:
    base = module.settings or module.located
    for chunk in options.oversized:
        yield ctx.issue(
            "create-options-format",
            at_member(chunk, f"{base.path}.{chunk.key}"),
            f"{chunk.key} of {describe(module)} is longer than {CHUNK_SIZE} characters: split"
            f" it into chunks of at most {CHUNK_SIZE} (createOptions, createOptions01, ...)",
        )


def _host_config(module: ModuleEntry) -> dict[str, Any]:
    value = module.create_options.get("HostConfig")
    return value if isinstance(value, dict) else {}


def log_limits(ctx: LintContext) -> Iterator[Issue]:
    if ctx.settings.daemon_log_policy:
        return
    for module in ctx.manifest.modules:
        if module.create_options.value is None or module.obj is None:
            continue
        log_config = _host_config(module).get("LogConfig")
        problem = log_problem(log_config)
        if problem:
            yield ctx.issue(
                "log-limits",
                options_location(module, "HostConfig", "LogConfig"),
                f"{describe(module)} {problem}: set HostConfig.LogConfig with Type json-file"
                ' and Config max-size and max-file (e.g. "10m" and "3"), or declare a'
                " daemon-wide log policy in the lint settings",
            )


def log_problem(log_config: Any) -> str | None:
    if not isinstance(log_config, dict):
        return "has no log size limit (Docker keeps container logs forever by default)"
    driver = str(log_config.get("Type") or "json-file")
    if driver not in LOG_DRIVERS_WITH_FILES:
        return None
    config = log_config.get("Config")
    config = config if isinstance(config, dict) else {}
    missing = [key for key in ("max-size", "max-file") if not config.get(key)]
    if missing:
        return f"logs with {driver} without {' and '.join(missing)}"
    return None


def host_storage(ctx: LintContext) -> Iterator[Issue]:
    for role in (Role.AGENT, Role.HUB):
        module = ctx.runtime(role)
        if module is None or module.obj is None:
            continue
        folder = module.env_value("StorageFolder")
        if folder is None:
            yield ctx.missing(
                "host-storage",
                module.located,
                "env.StorageFolder",
                f"{module.name} keeps its state inside the container: set env StorageFolder"
                " (e.g. /iotedge/storage) and bind a host directory there (HostConfig.Binds)",
            )
        elif not _is_mounted(module, folder[0]):
            yield ctx.issue(
                "host-storage",
                folder[1],
                f"{module.name} StorageFolder {folder[0]} is not on the host: bind a host"
                f' directory to it (HostConfig.Binds ["/srv/{module.name}:{folder[0]}"])',
            )


def _is_mounted(module: ModuleEntry, folder: str) -> bool:
    host_config = _host_config(module)
    targets = [
        bind.split(":")[1]
        for bind in host_config.get("Binds") or []
        if isinstance(bind, str) and bind.count(":") >= 1
    ]
    targets += [
        mount.get("Target", "")
        for mount in host_config.get("Mounts") or []
        if isinstance(mount, dict)
    ]
    folder = folder.rstrip("/") + "/"
    return any(t and folder.startswith(str(t).rstrip("/") + "/") for t in targets)


def privileged_module(ctx: LintContext) -> Iterator[Issue]:
    for module in ctx.manifest.modules:
        host_config = _host_config(module)
        if host_config.get("Privileged") is True:
            yield ctx.issue(
                "privileged-module",
                options_location(module, "HostConfig", "Privileged"),
                f"{describe(module)} runs privileged (root on the host): grant only the devices"
                " (HostConfig.Devices) and capabilities (CapAdd) it needs",
            )
        if str(host_config.get("NetworkMode", "")).lower() == "host":
            yield ctx.issue(
                "privileged-module",
                options_location(module, "HostConfig", "NetworkMode"),
                f"{describe(module)} uses the host network: publish the ports it needs instead",
            )
        if _binds_docker_socket(host_config):
            yield ctx.issue(
                "privileged-module",
                options_location(module, "HostConfig"),
                f"{describe(module)} mounts the Docker socket, which gives it control of the"
                " host: remove the bind unless the module must manage containers",
            )


def _binds_docker_socket(host_config: dict[str, Any]) -> bool:
    sources = [str(b).split(":")[0] for b in host_config.get("Binds") or []]
    sources += [
        str(m.get("Source", "")) for m in host_config.get("Mounts") or [] if isinstance(m, dict)
    ]
    return any(source.endswith(DOCKER_SOCKET) for source in sources)


def debug_port(ctx: LintContext) -> Iterator[Issue]:
    for module in ctx.manifest.modules:
        options = module.create_options
        for port in sorted(_published_ports(options) & DEBUG_PORTS):
            yield ctx.issue(
                "debug-port",
                options_location(module, "HostConfig", "PortBindings"),
                f"{describe(module)} exposes debugger port {port}: remove it (and the"
                " ExposedPorts entry) outside debug builds",
            )
        cap_add = _host_config(module).get("CapAdd") or []
        if any(str(cap).upper().removeprefix("CAP_") == "SYS_PTRACE" for cap in cap_add):
            yield ctx.issue(
                "debug-port",
                options_location(module, "HostConfig", "CapAdd"),
                f"{describe(module)} adds SYS_PTRACE, a debugger capability: remove it outside"
                " debug builds",
            )


def _published_ports(options: CreateOptions) -> set[int]:
    ports: set[int] = set()
    bindings = options.get("HostConfig", "PortBindings")
    exposed = options.get("ExposedPorts")
    for mapping in (bindings, exposed):
        if isinstance(mapping, dict):
            ports |= {_port(key) for key in mapping}
    return ports - {-1}


def _port(key: str) -> int:
    number = str(key).split("/")[0]
    return int(number) if number.isdigit() else -1


def bound_ports(module: ModuleEntry) -> set[int]:
    """The container ports a module publishes on the host."""
    bindings = module.create_options.get("HostConfig", "PortBindings")
    return {_port(k) for k in bindings} - {-1} if isinstance(bindings, dict) else set()


CHECKS: dict[str, Check] = {
    "create-options-format": create_options_format,
    "log-limits": log_limits,
    "host-storage": host_storage,
    "privileged-module": privileged_module,
    "debug-port": debug_port,
}

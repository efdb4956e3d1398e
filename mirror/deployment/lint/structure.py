"""Lint rules about the manifest's structure: shape, schema versions, required and
allowed fields, layered files, signatures and twin size."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from mirror.deployment.document import JArray, JNumber, JObject, Node, to_python
from mirror.deployment.lint.context import Check, Issue, LintContext, describe, has_placeholder
from mirror.deployment.lint.finding import Severity
from mirror.deployment.shape import (
    DESIRED,
    SYSTEM_MODULES,
    Located,
    ModuleEntry,
    Role,
    Shape,
    Twin,
    at_member,
)

AGENT_SCHEMAS = ("1.0", "1.1")
HUB_SCHEMAS = ("1.0", "1.1", "1.2", "1.3")
STATUSES = ("running", "stopped")
RESTART_POLICIES = ("never", "on-failure", "on-unhealthy", "always")
PULL_POLICIES = ("on-create", "never")
MODULE_KEYS = {
    Role.AGENT: {"type", "settings", "env", "imagePullPolicy"},
    Role.HUB: {"type", "settings", "env", "imagePullPolicy", "status", "restartPolicy"}
    | {"startupOrder"},
    Role.MODULE: {"version", "type", "status", "restartPolicy", "imagePullPolicy"}
    | {"startupOrder", "env", "settings"},
}
MODULE_LEVEL = {"imagePullPolicy", "startupOrder", "env", "status", "restartPolicy", "type"}
MODULE_LEVEL |= {"version"}
DESIRED_KEYS = {"schemaVersion", "runtime", "systemModules", "modules", "integrity"}
RUNTIME_SETTINGS_KEYS = {"minDockerVersion", "loggingOptions", "registryCredentials"}
CREDENTIAL_KEYS = ("username", "password", "address")
TWIN_LIMIT = 32 * 1024
_SETTINGS_KEY = re.compile(r"^(?:image|digest|createOptions[0-9]*|createoptions[0-9]*)$")
_MODULE_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_ENV_NAME = re.compile(r"^[^+#$\s.]+$")
_CREDENTIAL_NAME = re.compile(r"^[^.$# ]+$")


def manifest_shape(ctx: LintContext) -> Iterator[Issue]:
    manifest = ctx.manifest
    if manifest.shape is Shape.LEGACY:
        yield ctx.issue(
            "manifest-shape",
            manifest.content,
            "moduleContent is the legacy spelling: rename it to modulesContent",
            Severity.WARNING,
        )
    yield from _duplicates(ctx)
    if manifest.is_layered:
        return
    for twin_name, twin in (("$edgeAgent", manifest.agent), ("$edgeHub", manifest.hub)):
        if twin is None:
            yield ctx.missing(
                "manifest-shape",
                manifest.content,
                twin_name,
                f"add {twin_name} (an object with properties.desired) to modulesContent",
            )
    if manifest.agent is not None:
        yield from _agent_sections(ctx, manifest.agent)
    if manifest.hub is not None:
        yield from _required_sections(ctx, manifest.hub, ("routes",))
    for module in manifest.modules:
        if module.obj is None:
            yield ctx.issue(
                "manifest-shape", module.located, f"{describe(module)} must be a JSON object"
            )


def _duplicates(ctx: LintContext) -> Iterator[Issue]:
    for node, path in _objects(ctx.manifest.document.root, ""):
        for member in node.duplicates():
            yield Issue(
                "manifest-shape",
                f"{path}.{member.key}" if path else member.key,
                member.key_start,
                f'duplicate key "{member.key}": only the last one counts; remove the other',
            )


def _objects(node: Node, path: str) -> Iterator[tuple[JObject, str]]:
    """Every object under `node`, with its JSON path."""
    if isinstance(node, JObject):
        yield node, path
        for member in node.members:
            yield from _objects(member.value, f"{path}.{member.key}" if path else member.key)
    elif isinstance(node, JArray):
        for index, item in enumerate(node.items):
            yield from _objects(item, f"{path}[{index}]")


def _agent_sections(ctx: LintContext, agent: Twin) -> Iterator[Issue]:
    yield from _required_sections(ctx, agent, ("runtime", "systemModules", "modules"))
    runtime = agent.find(*DESIRED, "runtime")
    if runtime is not None and runtime.obj is not None:
        for key in ("type", "settings"):
            if runtime.child(key) is None:
                hint = '"docker"' if key == "type" else "an object"
                yield ctx.missing("manifest-shape", runtime, key, f"set runtime.{key} to {hint}")
    system = agent.find(*SYSTEM_MODULES)
    if system is not None and system.obj is not None:
        for name in ("edgeAgent", "edgeHub"):
            if system.child(name) is None:
                yield ctx.missing("manifest-shape", system, name, f"add systemModules.{name}")


def _required_sections(ctx: LintContext, twin: Twin, sections: tuple[str, ...]) -> Iterator[Issue]:
    desired = twin.find(*DESIRED)
    if desired is None or desired.obj is None:
        yield ctx.missing(
            "manifest-shape",
            twin.located,
            "properties.desired",
            f'add "properties.desired" (an object) to {twin.name}',
        )
        return
    for section in sections:
        found = desired.child(section)
        if found is None:
            empty = ' (an empty "modules": {} will do)' if section == "modules" else ""
            yield ctx.missing(
                "manifest-shape", desired, section, f"add {section} to {twin.name}{empty}"
            )
        elif found.obj is None:
            yield ctx.issue("manifest-shape", found, f"{section} must be a JSON object")


def agent_schema_version(ctx: LintContext) -> Iterator[Issue]:
    yield from _schema_version(ctx, ctx.manifest.agent, "agent-schema-version", AGENT_SCHEMAS)


def hub_schema_version(ctx: LintContext) -> Iterator[Issue]:
    hub = ctx.manifest.hub
    yield from _schema_version(ctx, hub, "hub-schema-version", HUB_SCHEMAS)
    version = _schema(hub)
    if hub is None or version not in HUB_SCHEMAS:
        return
    for feature, needed in (("mqttBroker", "1.2"), ("integrity", "1.3")):
        found = hub.find(*DESIRED, feature)
        if found is not None and version < needed:
            yield ctx.issue(
                "hub-schema-version",
                found,
                f"{feature} needs $edgeHub schemaVersion {needed} or later: set schemaVersion"
                f' to "{needed}"',
            )


def _schema(twin: Twin | None) -> str | None:
    found = twin.find(*DESIRED, "schemaVersion") if twin else None
    return found.text if found else None


def _schema_version(
    ctx: LintContext, twin: Twin | None, rule: str, accepted: tuple[str, ...]
) -> Iterator[Issue]:
    if twin is None or ctx.manifest.is_layered:
        return
    desired = twin.find(*DESIRED)
    if desired is None:
        return
    found = desired.child("schemaVersion")
    choices = " or ".join(f'"{v}"' for v in accepted)
    if found is None:
        yield ctx.missing(
            rule, desired, "schemaVersion", f"set {twin.name} schemaVersion to {choices}"
        )
    elif found.text is None:
        yield ctx.issue(rule, found, f"write schemaVersion as a string: {choices}")
    elif has_placeholder(found.text):
        if ctx.deployable:
            yield ctx.issue(
                rule, found, f"schemaVersion is still the placeholder {found.text}: set {choices}"
            )
    elif found.text not in accepted:
        yield ctx.issue(
            rule, found, f"{twin.name} schemaVersion {found.text!r} is not accepted: use {choices}"
        )


def schema_feature(ctx: LintContext) -> Iterator[Issue]:
    if ctx.manifest.is_layered:
        return
    if _schema(ctx.manifest.agent) == "1.0":
        for module in ctx.manifest.modules:
            found = module.field("startupOrder")
            if found is not None:
                yield ctx.issue(
                    "schema-feature",
                    found,
                    'startupOrder needs $edgeAgent schemaVersion "1.1": raise schemaVersion'
                    " or remove startupOrder",
                )
    hub = ctx.manifest.hub
    if hub is not None and _schema(hub) == "1.0":
        for route in hub.children(*DESIRED, "routes").values():
            if route.obj is not None:
                yield ctx.issue(
                    "schema-feature",
                    route,
                    'route objects (priority, timeToLiveSecs) need $edgeHub schemaVersion "1.1":'
                    " raise schemaVersion or write the route as a string",
                )


def required_field(ctx: LintContext) -> Iterator[Issue]:
    for module in ctx.manifest.modules:
        if module.obj is not None:
            yield from _module_required(ctx, module)
    for entry in ctx.manifest.credentials:
        if entry.located.obj is None:
            yield ctx.issue("required-field", entry.located, "a credential entry is an object")
            continue
        for key in CREDENTIAL_KEYS:
            if entry.field(key) is None:
                yield ctx.missing(
                    "required-field",
                    entry.located,
                    key,
                    f"registry credential {entry.name!r} needs {key} (username, password and"
                    " address are all required)",
                )


def _module_required(ctx: LintContext, module: ModuleEntry) -> Iterator[Issue]:
    needed = ["type"]
    if module.role is not Role.AGENT:
        needed += ["status", "restartPolicy"]
    for key in needed:
        if module.field(key) is None:
            yield ctx.missing("required-field", module.located, key, _required_message(module, key))
    if module.settings is None:
        yield ctx.missing(
            "required-field", module.located, "settings", f"{describe(module)} needs settings.image"
        )
    elif module.image is None:
        yield ctx.missing(
            "required-field", module.settings, "image", f"{describe(module)} needs settings.image"
        )
    if module.role is Role.HUB:
        for key, wanted in (("status", "running"), ("restartPolicy", "always")):
            found = module.field(key)
            if found is not None and found.text != wanted:
                yield ctx.issue("required-field", found, f'edgeHub must have {key} "{wanted}"')


def _required_message(module: ModuleEntry, key: str) -> str:
    if module.role is Role.HUB:
        value = {"status": "running", "restartPolicy": "always", "type": "docker"}[key]
        return f'set edgeHub {key} to "{value}"'
    examples = {"type": '"docker"', "status": '"running"', "restartPolicy": '"always"'}
    return f"{describe(module)} needs {key} (e.g. {examples[key]})"


def enum_value(ctx: LintContext) -> Iterator[Issue]:
    for module in ctx.manifest.modules:
        if module.role is Role.MODULE and not _MODULE_NAME.match(module.name):
            yield ctx.issue(
                "enum-value",
                module.located,
                f"module name {module.name!r} may hold only letters, digits, '-' and '_'",
            )
        if module.obj is not None:
            yield from _module_values(ctx, module)
    yield from _runtime_type(ctx)
    for entry in ctx.manifest.credentials:
        if not _CREDENTIAL_NAME.match(entry.name):
            yield ctx.issue(
                "enum-value",
                entry.located,
                f"registry credential name {entry.name!r} must not hold '.', '$', '#' or spaces",
            )
        address = entry.field("address")
        if address is not None and address.text is not None and re.search(r"\s", address.text):
            yield ctx.issue("enum-value", address, "a registry address holds no whitespace")


def _module_values(ctx: LintContext, module: ModuleEntry) -> Iterator[Issue]:
    allowed = {
        "type": ("docker",),
        "status": STATUSES,
        "restartPolicy": RESTART_POLICIES,
        "imagePullPolicy": PULL_POLICIES,
    }
    for key, values in allowed.items():
        found = module.field(key)
        if found is None or (module.role is Role.HUB and key in ("status", "restartPolicy")):
            continue
        if found.text is not None and has_placeholder(found.text) and not ctx.deployable:
            continue
        if found.text not in values:
            shown = (
                found.text if found.text is not None else ctx.manifest.document.source(found.node)
            )
            yield ctx.issue(
                "enum-value",
                found,
                f"{key} {shown!r} of {describe(module)} is not one of: {', '.join(values)}",
            )
    yield from _startup_order(ctx, module)
    for name, entry in module.env.items():
        if not _ENV_NAME.match(name):
            yield ctx.issue(
                "enum-value",
                entry,
                f"environment variable name {name!r} must not hold '+', '#', '$', '.' or spaces",
            )


def _startup_order(ctx: LintContext, module: ModuleEntry) -> Iterator[Issue]:
    found = module.field("startupOrder")
    if found is None:
        return
    value = found.node.value if isinstance(found.node, JNumber) else None
    if not isinstance(value, int) or not 0 <= value <= 4294967295:
        yield ctx.issue(
            "enum-value", found, "startupOrder must be a whole number from 0 to 4294967295"
        )


def _runtime_type(ctx: LintContext) -> Iterator[Issue]:
    agent = ctx.manifest.agent
    found = agent.find(*DESIRED, "runtime", "type") if agent else None
    if found is not None and found.text != "docker":
        yield ctx.issue("enum-value", found, 'runtime.type must be "docker"')


def misplaced_setting(ctx: LintContext) -> Iterator[Issue]:
    for module in ctx.manifest.modules:
        if module.obj is not None:
            yield from _module_keys(ctx, module)
        if module.settings is not None and module.settings.obj is not None:
            yield from _settings_keys(ctx, module, module.settings)
        yield from _env_entries(ctx, module)
    agent = ctx.manifest.agent
    if agent is not None and not ctx.manifest.is_layered:
        yield from _unknown(ctx, agent.find(*DESIRED), DESIRED_KEYS, "$edgeAgent desired")
        settings = agent.find(*DESIRED, "runtime", "settings")
        yield from _unknown(ctx, settings, RUNTIME_SETTINGS_KEYS, "runtime.settings")
    for entry in ctx.manifest.credentials:
        yield from _unknown(ctx, entry.located, set(CREDENTIAL_KEYS), "a registry credential")


def _module_keys(ctx: LintContext, module: ModuleEntry) -> Iterator[Issue]:
    assert module.obj is not None
    for member in module.obj.members:
        located = at_member(member, f"{module.located.path}.{member.key}")
        if member.key in MODULE_KEYS[module.role]:
            continue
        if member.key == "image" or member.key.lower().startswith("createoptions"):
            message = f"move {member.key} into settings of {describe(module)}"
        else:
            message = f"{describe(module)} has an unknown key {member.key!r}: remove it"
        yield ctx.issue("misplaced-setting", located, message)


def _settings_keys(ctx: LintContext, module: ModuleEntry, settings: Located) -> Iterator[Issue]:
    assert settings.obj is not None
    for member in settings.obj.members:
        if _SETTINGS_KEY.match(member.key):
            continue
        located = at_member(member, f"{settings.path}.{member.key}")
        if member.key in MODULE_LEVEL:
            message = (
                f"{member.key} belongs at the module level of {describe(module)}, not inside"
                " settings (edgeAgent ignores it there): move it up one level"
            )
        else:
            message = (
                f"settings of {describe(module)} has an unknown key {member.key!r}: settings"
                " holds image, createOptions and digest only"
            )
        yield ctx.issue("misplaced-setting", located, message)


def _env_entries(ctx: LintContext, module: ModuleEntry) -> Iterator[Issue]:
    for name, entry in module.env.items():
        if entry.obj is None or entry.child("value") is None:
            yield ctx.issue(
                "misplaced-setting",
                entry,
                f'write environment variable {name} as {{"value": ...}}',
            )
            continue
        yield from _unknown(ctx, entry, {"value"}, f"environment variable {name}")


def _unknown(
    ctx: LintContext, located: Located | None, allowed: set[str], what: str
) -> Iterator[Issue]:
    if located is None or located.obj is None:
        return
    for member in located.obj.members:
        if member.key not in allowed:
            yield ctx.issue(
                "misplaced-setting",
                at_member(member, f"{located.path}.{member.key}"),
                f"{what} has an unknown key {member.key!r}: remove it"
                f" (allowed: {', '.join(sorted(allowed))})",
            )


def layered_shape(ctx: LintContext) -> Iterator[Issue]:
    manifest = ctx.manifest
    if not manifest.is_layered:
        return
    if manifest.agent is None:
        yield ctx.missing(
            "layered-shape",
            manifest.content,
            "$edgeAgent",
            "a layered deployment needs $edgeAgent, even empty ({})",
        )
    for twin in (manifest.agent, manifest.hub):
        if twin is None:
            continue
        for member in twin.node.members:
            located = at_member(member, f"{twin.located.path}.{member.key}")
            if not member.key.startswith("properties.desired."):
                yield ctx.issue(
                    "layered-shape",
                    located,
                    f"layered deployments set dotted keys only (properties.desired.<path>);"
                    f" split {member.key!r} into such keys",
                )
            elif member.key.startswith(".".join(SYSTEM_MODULES)):
                yield ctx.issue(
                    "layered-shape",
                    located,
                    "layered deployments cannot change system modules: set edgeAgent and"
                    " edgeHub in the base deployment",
                )


def signed_manifest(ctx: LintContext) -> Iterator[Issue]:
    for block in ctx.manifest.integrity:
        yield ctx.issue(
            "signed-manifest",
            block,
            "the manifest is signed: mirror rewrite will refuse it, because any change breaks"
            " the signature; rewrite the unsigned manifest and sign it again",
        )


def twin_size(ctx: LintContext) -> Iterator[Issue]:
    agent = ctx.manifest.agent
    if agent is None:
        return
    size = len(json.dumps(to_python(agent.node), separators=(",", ":")).encode())
    if size < ctx.settings.twin_size_warning_bytes:
        return
    over = "over" if size > TWIN_LIMIT else "near"
    yield ctx.issue(
        "twin-size",
        agent.located,
        f"$edgeAgent desired properties take {size} bytes, {over} the {TWIN_LIMIT // 1024} KB"
        " module twin limit: move configuration into module twins, shorten createOptions,"
        " or split the deployment into layers",
    )


CHECKS: dict[str, Check] = {
    "manifest-shape": manifest_shape,
    "agent-schema-version": agent_schema_version,
    "hub-schema-version": hub_schema_version,
    "schema-feature": schema_feature,
    "required-field": required_field,
    "enum-value": enum_value,
    "misplaced-setting": misplaced_setting,
    "layered-shape": layered_shape,
    "signed-manifest": signed_manifest,
    "twin-size": twin_size,
}

"""The target's `registryCredentials` entry in a deployment manifest: found or added.

`credential_edits` points the entry for the mirror (found by its address, else by its
name) at the pull identity's placeholders, or adds one at the deepest existing object
on the `registryCredentials` path of edgeAgent's desired properties; the values are
placeholders (`$MIRROR_PULL_USERNAME`), never secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from mirror.deployment.document import Document, JString
from mirror.deployment.edits import (
    Change,
    ChangeKind,
    Edit,
    Rendered,
    insert_member,
    insert_members,
    replace_string,
)
from mirror.deployment.edits import string_literal as _literal
from mirror.deployment.resolvers import Target
from mirror.deployment.settings import RewriteSettings
from mirror.deployment.shape import (
    REGISTRY_CREDENTIALS,
    CredentialEntry,
    DeploymentManifest,
    Located,
    Twin,
)


def credential_edits(
    manifest: DeploymentManifest, target: Target, settings: RewriteSettings
) -> tuple[list[Edit], list[Change]]:
    name = _entry_name(manifest, settings, target)
    wanted = {
        "username": settings.username_variable,
        "password": settings.password_variable,
        "address": target.registry,
    }
    entry = _find_entry(manifest, name, target)
    if entry is not None:
        return _update_entry(manifest, entry, wanted)
    added = _add_entry(manifest, manifest.agent, name, wanted) if manifest.agent else None
    if added is None:
        return [], []
    edit, located = added
    change = Change(
        ChangeKind.CREDENTIAL,
        f"{located.path}.{name}" if located.path else name,
        manifest.document.line_of(located.anchor),
        None,
        json.dumps(wanted, separators=(", ", ": ")),
    )
    return [edit], [change]


def _find_entry(manifest: DeploymentManifest, name: str, target: Target) -> CredentialEntry | None:
    """The entry for the target: the one with its address, else the one named `name`."""
    by_address = [c for c in manifest.credentials if _host(c.text("address")) == target.registry]
    by_name = [c for c in manifest.credentials if c.name == name]
    return next(iter(by_address or by_name), None)


def _entry_name(manifest: DeploymentManifest, settings: RewriteSettings, target: Target) -> str:
    """The configured name, or the registry's name unless another registry's entry has it."""
    if settings.credential_name:
        return settings.credential_name
    taken = {
        c.name
        for c in manifest.credentials
        if c.text("address") and _host(c.text("address")) != target.registry
    }
    name, number = target.credential_name, 1
    while name in taken:
        number += 1
        name = f"{target.credential_name}{number}"
    return name


def _host(address: str | None) -> str | None:
    if address is None:
        return None
    return re.sub(r"^[a-z]+://", "", address.strip().lower()).strip("/")


def _update_entry(
    manifest: DeploymentManifest, entry: CredentialEntry, wanted: dict[str, str]
) -> tuple[list[Edit], list[Change]]:
    node = entry.located.obj
    if node is None:
        return [], []
    edits, changes = [], []
    missing: dict[str, Rendered] = {}
    for key, value in wanted.items():
        found = entry.field(key)
        if found is not None and found.text == value:
            continue
        path = f"{entry.located.path}.{key}"
        if found is None:
            missing[key] = value
            line = manifest.line(entry.located)
            changes.append(Change(ChangeKind.CREDENTIAL, path, line, None, value))
            continue
        edits.append(_replace_value(manifest.document, found, value))
        old = found.text if found.text is not None else manifest.document.source(found.node)
        changes.append(Change(ChangeKind.CREDENTIAL, path, manifest.line(found), old, value))
    edits += insert_members(manifest.document, node, missing)
    return edits, changes


def _replace_value(document: Document, located: Located, value: str) -> Edit:
    if isinstance(located.node, JString):
        return replace_string(document, located.node, value)
    return Edit(located.node.start, located.node.end, _literal(value))


def _add_entry(
    manifest: DeploymentManifest, agent: Twin, name: str, entry: dict[str, str]
) -> tuple[Edit, Located] | None:
    """Insert the entry at the deepest existing object on the registryCredentials path;
    None when a step of that path holds something else than an object (adding the
    entry would then name that key twice: the manifest is for its author to fix, as
    `mirror lint` says)."""
    segments = REGISTRY_CREDENTIALS
    for depth in range(len(segments), 0, -1):
        parent = agent.find(*segments[:depth])
        if parent is None:
            continue
        if parent.obj is None:
            return None
        value = _nest(segments[depth:], name, entry)
        key, inner = next(iter(value.items()))
        edit = insert_member(manifest.document, parent.obj, key, inner)
        path = ".".join((parent.path, *segments[depth:]))
        return edit, Located(parent.node, path, parent.anchor)
    if manifest.is_layered:
        key = ".".join((*segments, name))
        edit = insert_member(manifest.document, agent.node, key, entry)
        path = f"{agent.located.path}.{'.'.join(segments)}"
        return edit, Located(agent.node, path, agent.located.anchor)
    inner = _nest(segments[3:], name, entry)
    edit = insert_member(manifest.document, agent.node, "properties.desired", {"runtime": inner})
    path = f"{agent.located.path}.{'.'.join(segments)}"
    return edit, Located(agent.node, path, agent.located.anchor)


def _nest(keys: Iterable[str], name: str, entry: dict[str, str]) -> dict[str, Rendered]:
    value: dict[str, Rendered] = {name: entry}
    for key in reversed(tuple(keys)):
        value = {key: value}
    return value

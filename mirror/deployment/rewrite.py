"""Pointing a deployment manifest's images at the mirror.

`rewrite_manifest` walks edgeAgent, edgeHub and every module, asks an injected
`Resolver` what each mirrored image becomes (`TagResolver` maps the name and keeps the
tag, offline; `PinningResolver` asks a `VersionLookup` (ledger or registry) for the
specific version or index digest a tag means), and splices the answers into the text.
It adds or updates the target's `registryCredentials` entry with placeholders for the
pull identity. Everything else stays byte-for-byte; what was left alone is reported
with the reason. A signed manifest is refused.

An image already served from the target is left as it is, except that `--pin
specific|digest` also pins the ones mirrored from a source (a manifest rewritten
earlier with tags can be pinned later); the fleet's own images are never touched.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mirror.deployment.document import Document, JString, parse_document
from mirror.deployment.edits import Edit, Rendered, apply_edits, insert_member, replace_string
from mirror.deployment.edits import string_literal as _literal
from mirror.deployment.errors import SignedManifest
from mirror.deployment.images import ImageKind, ImageString, classify, find_placeholders
from mirror.deployment.settings import RewriteSettings
from mirror.deployment.shape import (
    REGISTRY_CREDENTIALS,
    CredentialEntry,
    Located,
    Manifest,
    ModuleEntry,
    Twin,
    load_manifest,
)
from mirror.errors import ConfigError
from mirror.reference import ImageReference, validate_repository
from mirror.versions import parse_tag

_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?$"
)


class PinMode(StrEnum):
    TAG = "tag"  # keep the tag as written
    SPECIFIC = "specific"  # a rolling tag becomes the specific version it means now
    DIGEST = "digest"  # name@sha256:<index digest>


@dataclass(frozen=True, slots=True)
class Target:
    """The mirror: a registry host and an optional repository path prefix."""

    registry: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> Target:
        """`myacr.azurecr.io` or `myacr.azurecr.io/some/prefix` (a scheme is dropped).

        The host must look like a registry (a dot, a port, or `localhost`): anything else
        would make the image strings name a Docker Hub namespace instead.
        """
        bare = re.sub(r"^[a-z]+://", "", text.strip()).strip("/")
        host, _, path = bare.partition("/")
        if not _HOST.match(host) or not ("." in host or ":" in host or host == "localhost"):
            raise ConfigError(f"not a registry host: {text!r} (expected e.g. myacr.azurecr.io)")
        prefix = path.strip("/")
        if prefix:
            validate_repository(prefix)
        return cls(host.lower(), prefix)

    def __str__(self) -> str:
        return f"{self.registry}/{self.prefix}" if self.prefix else self.registry

    def repository_for(self, source_repository: str) -> str:
        return f"{self.prefix}/{source_repository}" if self.prefix else source_repository

    @property
    def credential_name(self) -> str:
        """Default name of the registryCredentials entry: the registry's name
        (`myacr` for myacr.azurecr.io; `10-0-0-5` for an address such as 10.0.0.5:5000)."""
        host = self.registry.split(":")[0]
        if host.replace(".", "").isdigit():
            return host.replace(".", "-")
        return host.split(".")[0]

    def holds(self, image: ImageString) -> bool:
        return image.registry is not None and image.registry.lower() == self.registry


def format_image(registry: str, repository: str, tag: str | None, digest: str | None) -> str:
    """An image string edgeAgent accepts: `name@digest` if pinned, else `name:tag`."""
    name = f"{registry}/{repository}"
    if digest:
        return f"{name}@{digest}"
    return f"{name}:{tag}" if tag else name


@dataclass(frozen=True, slots=True)
class Resolved:
    image: str


@dataclass(frozen=True, slots=True)
class Unresolved:
    reason: str


Resolution = Resolved | Unresolved


class Resolver(Protocol):
    """Decides what a mirrored source image becomes in the target."""

    def __call__(self, source: ImageString, pin: PinMode) -> Resolution: ...


class VersionLookup(Protocol):
    """What a tag of a source repository means now (from the ledger or the registry)."""

    def specific_tag(self, source: ImageReference) -> str | None: ...

    def index_digest(self, source: ImageReference) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TagResolver:
    """`--pin tag`, offline: the same tag (or digest) under the target's name.

    For `specific` and `digest` it answers only what needs no lookup: a tag that is
    already specific, or a digest already written.
    """

    target: Target

    def __call__(self, source: ImageString, pin: PinMode) -> Resolution:
        if source.repository is None:
            return Unresolved("the repository name is a placeholder")
        repository = self.target.repository_for(source.repository)
        if source.digest:
            return Resolved(format_image(self.target.registry, repository, None, source.digest))
        if pin is PinMode.TAG:
            return Resolved(format_image(self.target.registry, repository, source.tag, None))
        if source.literal_tag is None:
            return Unresolved(f"--pin {pin} needs a literal tag; this one is a placeholder")
        if pin is PinMode.SPECIFIC and parse_tag(source.literal_tag).names_release:
            return Resolved(format_image(self.target.registry, repository, source.tag, None))
        what = "specific version" if pin is PinMode.SPECIFIC else "index digest"
        return Unresolved(
            f"the {what} of {source.text} needs the ledger or the registry (not offline)"
        )


@dataclass(frozen=True, slots=True)
class PinningResolver:
    """`--pin specific|digest` through a `VersionLookup`; `--pin tag` as `TagResolver`.

    `origin` names where the lookup looks (e.g. the target registry) in the reason
    given when it has no answer.
    """

    target: Target
    lookup: VersionLookup
    origin: str = ""

    def __call__(self, source: ImageString, pin: PinMode) -> Resolution:
        offline = TagResolver(self.target)(source, pin)
        if isinstance(offline, Resolved) or source.reference is None:
            return offline
        assert source.repository is not None
        repository = self.target.repository_for(source.repository)
        if pin is PinMode.SPECIFIC:
            tag = self.lookup.specific_tag(source.reference)
            if tag is None:
                return Unresolved(f"no specific version is known for {source.text}{self._in}")
            return Resolved(format_image(self.target.registry, repository, tag, None))
        digest = self.lookup.index_digest(source.reference)
        if digest is None:
            return Unresolved(f"no index digest is known for {source.text}{self._in}")
        return Resolved(format_image(self.target.registry, repository, None, digest))

    @property
    def _in(self) -> str:
        return f" in {self.origin}" if self.origin else ""


class ChangeKind(StrEnum):
    IMAGE = "image"
    CREDENTIAL = "credential"


@dataclass(frozen=True, slots=True)
class Change:
    """One value the rewrite changed or added; `line` is its line in the input."""

    kind: ChangeKind
    path: str
    line: int
    old: str | None
    new: str
    note: str | None = None


class Reason(StrEnum):
    PLACEHOLDER = "placeholder"
    UPSTREAM = "upstream"
    OTHER_REGISTRY = "other-registry"
    ALREADY_MIRRORED = "already-mirrored"
    INVALID = "invalid"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True, slots=True)
class LeftAlone:
    """An image the rewrite did not touch, and why."""

    path: str
    line: int
    image: str
    reason: Reason
    detail: str


@dataclass(frozen=True)
class RewriteResult:
    """The rewritten text and an account of what changed and what did not."""

    file: str
    original: str
    text: str
    changes: tuple[Change, ...]
    left_alone: tuple[LeftAlone, ...]

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def encode(self) -> bytes:
        return self.text.encode("utf-8")

    def diff(
        self,
        fromfile: str | None = None,
        tofile: str | None = None,
        redact: Iterable[str] = (),
    ) -> str:
        """A unified diff from the input to the output (empty when nothing changed).

        Every occurrence of a text in `redact` (e.g. the literals of `secret_literals`)
        is shown as `"***"`, so that a diff printed in a CI log holds no password.
        """
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True),
            self.text.splitlines(keepends=True),
            fromfile=fromfile or self.file,
            tofile=tofile or self.file,
        )
        hidden = sorted(set(redact) - {""}, key=len, reverse=True)
        return "".join(
            _redact(line, hidden)
            if line.endswith(("\n", "\r"))
            else _redact(line, hidden) + "\n\\ No newline at end of file\n"
            for line in lines
        )


def _redact(line: str, hidden: list[str]) -> str:
    for text in hidden:
        line = line.replace(text, '"***"')
    return line


def secret_literals(manifest: Manifest) -> tuple[str, ...]:
    """The JSON literals (as written, quotes included) of every credential password in
    `manifest` that is not a placeholder: what a printed diff must not show."""
    found = []
    for entry in manifest.credentials:
        password = entry.field("password")
        if password is None or not isinstance(password.node, JString):
            continue
        if password.node.value and not find_placeholders(password.node.value):
            found.append(manifest.document.source(password.node))
    return tuple(dict.fromkeys(found))


def rewrite_manifest(
    manifest: Manifest,
    target: Target,
    *,
    pin: PinMode = PinMode.TAG,
    resolver: Resolver | None = None,
    settings: RewriteSettings | None = None,
) -> RewriteResult:
    """Rewrite the mirrored images of `manifest` to `target` (see the module docstring)."""
    settings = settings or RewriteSettings()
    resolve = resolver or TagResolver(target)
    _refuse_signed(manifest)
    edits: list[Edit] = []
    changes: list[Change] = []
    left: list[LeftAlone] = []
    on_target = False
    for module in manifest.modules:
        outcome = _rewrite_image(
            manifest, module, target=target, pin=pin, resolve=resolve, settings=settings
        )
        if isinstance(outcome, LeftAlone):
            left.append(outcome)
            on_target |= outcome.reason is Reason.ALREADY_MIRRORED
        elif outcome is not None:
            edit, change = outcome
            edits.append(edit)
            changes.append(change)
            on_target = True
    if settings.credentials and on_target:
        credential_edits, credential_changes = _credential(manifest, target, settings)
        edits += credential_edits
        changes += credential_changes
    text = apply_edits(manifest.document.text, edits)
    return RewriteResult(manifest.file, manifest.document.text, text, tuple(changes), tuple(left))


def rewrite_source(
    data: bytes | str,
    file: str,
    target: Target,
    *,
    pin: PinMode = PinMode.TAG,
    resolver: Resolver | None = None,
    settings: RewriteSettings | None = None,
) -> RewriteResult:
    """Parse, recognise and rewrite one file's content.

    Raises a `DeploymentFileError` (one line, naming the file) when the content is not
    JSON, not a deployment manifest, or signed.
    """
    manifest = load_manifest(parse_document(data, file))
    return rewrite_manifest(manifest, target, pin=pin, resolver=resolver, settings=settings)


def rewritten_references(
    result: RewriteResult, include_mirrored: bool = False
) -> tuple[ImageReference, ...]:
    """The references the rewrite produced (to check in the target), without duplicates.

    Images whose tag is still a placeholder cannot be checked and are not listed;
    `include_mirrored` adds the images that already pointed at the target.
    """
    texts = [c.new for c in result.changes if c.kind is ChangeKind.IMAGE]
    if include_mirrored:
        texts += [a.image for a in result.left_alone if a.reason is Reason.ALREADY_MIRRORED]
    references = (classify(text).reference for text in texts)
    return tuple(dict.fromkeys(r for r in references if r is not None))


def _refuse_signed(manifest: Manifest) -> None:
    blocks = manifest.integrity
    if blocks:
        line = manifest.line(blocks[0])
        raise SignedManifest(
            manifest.file,
            "refusing to rewrite a signed manifest: its integrity block signs the desired"
            " properties and any change breaks the signature; rewrite the unsigned"
            " manifest, then sign it again",
            line,
        )


def _rewrite_image(
    manifest: Manifest,
    module: ModuleEntry,
    *,
    target: Target,
    pin: PinMode,
    resolve: Resolver,
    settings: RewriteSettings,
) -> LeftAlone | tuple[Edit, Change] | None:
    located = module.image
    if located is None:
        return None
    line = manifest.line(located)
    if not isinstance(located.node, JString):
        return LeftAlone(located.path, line, "", Reason.INVALID, "the image is not a string")
    image = classify(located.node.value)
    source = image
    skipped = _skip_reason(image, target, settings)
    if skipped is not None and skipped[0] is Reason.ALREADY_MIRRORED and pin is not PinMode.TAG:
        source = _mirrored_source(image, target, settings) or image
        skipped = None if source is not image else skipped
    if skipped is not None:
        return LeftAlone(located.path, line, image.text, *skipped)
    resolution = resolve(source, pin)
    if isinstance(resolution, Unresolved):
        return LeftAlone(located.path, line, image.text, Reason.UNRESOLVED, resolution.reason)
    produced = classify(resolution.image)
    if produced.kind not in (ImageKind.REFERENCE, ImageKind.PLACEHOLDER) or produced.name is None:
        detail = f"the resolver produced {resolution.image!r}: {produced.problem or 'no name'}"
        return LeftAlone(located.path, line, image.text, Reason.UNRESOLVED, detail)
    if resolution.image == image.text:
        return None
    note = (
        "the tag is a placeholder: check the mirror once it is set"
        if (produced.kind is ImageKind.PLACEHOLDER)
        else None
    )
    change = Change(ChangeKind.IMAGE, located.path, line, image.text, resolution.image, note)
    return replace_string(manifest.document, located.node, resolution.image), change


def _skip_reason(
    image: ImageString, target: Target, settings: RewriteSettings
) -> tuple[Reason, str] | None:
    if image.kind is ImageKind.UPSTREAM:
        return Reason.UPSTREAM, "nested edge: $upstream is the parent device's registry"
    if image.kind is ImageKind.INVALID:
        return Reason.INVALID, image.problem or "not a valid image"
    if image.name is None:
        tokens = ", ".join(p.text for p in image.placeholders)
        return Reason.PLACEHOLDER, f"placeholder {tokens}: set when the manifest is generated"
    if target.holds(image):
        return Reason.ALREADY_MIRRORED, f"already served from {target.registry}"
    if not settings.is_source(image.name):
        return Reason.OTHER_REGISTRY, f"{image.name} is not a mirrored source"
    return None


def _mirrored_source(
    image: ImageString, target: Target, settings: RewriteSettings
) -> ImageString | None:
    """The source image an image already in the target was mirrored from, if it was one
    (so that `--pin specific|digest` can pin a manifest rewritten earlier with tags).

    The source registry comes from the `sources` patterns whose registry part is
    literal: `myacr.azurecr.io/edge/azureiotedge-agent:1.5` (prefix `edge`) is
    `mcr.microsoft.com/azureiotedge-agent:1.5` under the default pattern. Images of
    the target that no pattern names (the fleet's own modules) are not sources.
    """
    prefix = f"{target.prefix}/" if target.prefix else ""
    if image.repository is None or not image.repository.startswith(prefix):
        return None
    repository = image.repository[len(prefix) :]
    for pattern in settings.sources:
        registry = pattern.split("/", 1)[0]
        if any(c in registry for c in "*?[") or registry.lower() == target.registry:
            continue
        name = f"{registry}/{repository}"
        if settings.is_source(name):
            reference = f"@{image.digest}" if image.digest else f":{image.tag}" if image.tag else ""
            found = classify(name + reference)
            return found if found.kind is image.kind else None
    return None


def _credential(
    manifest: Manifest, target: Target, settings: RewriteSettings
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
    if manifest.agent is None:
        return [], []
    edit, located = _add_entry(manifest, manifest.agent, name, wanted)
    change = Change(
        ChangeKind.CREDENTIAL,
        f"{located.path}.{name}" if located.path else name,
        manifest.document.line_of(located.anchor),
        None,
        json.dumps(wanted, separators=(", ", ": ")),
    )
    return [edit], [change]


def _find_entry(manifest: Manifest, name: str, target: Target) -> CredentialEntry | None:
    """The entry for the target: the one with its address, else the one named `name`."""
    by_address = [c for c in manifest.credentials if _host(c.text("address")) == target.registry]
    by_name = [c for c in manifest.credentials if c.name == name]
    return next(iter(by_address or by_name), None)


def _entry_name(manifest: Manifest, settings: RewriteSettings, target: Target) -> str:
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
    manifest: Manifest, entry: CredentialEntry, wanted: dict[str, str]
) -> tuple[list[Edit], list[Change]]:
    node = entry.located.obj
    if node is None:
        return [], []
    edits, changes = [], []
    for key, value in wanted.items():
        found = entry.field(key)
        if found is not None and found.text == value:
            continue
        path = f"{entry.located.path}.{key}"
        if found is None:
            edits.append(insert_member(manifest.document, node, key, value))
            line = manifest.line(entry.located)
            changes.append(Change(ChangeKind.CREDENTIAL, path, line, None, value))
            continue
        edits.append(_replace_value(manifest.document, found, value))
        old = found.text if found.text is not None else manifest.document.source(found.node)
        changes.append(Change(ChangeKind.CREDENTIAL, path, manifest.line(found), old, value))
    return edits, changes


def _replace_value(document: Document, located: Located, value: str) -> Edit:
    if isinstance(located.node, JString):
        return replace_string(document, located.node, value)
    return Edit(located.node.start, located.node.end, _literal(value))


def _add_entry(
    manifest: Manifest, agent: Twin, name: str, entry: dict[str, str]
) -> tuple[Edit, Located]:
    """Insert the entry at the deepest existing object on the registryCredentials path."""
    segments = REGISTRY_CREDENTIALS
    for depth in range(len(segments), 1, -1):
        parent = agent.find(*segments[:depth])
        if parent is not None and parent.obj is not None:
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

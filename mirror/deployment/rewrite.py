"""Pointing a deployment manifest's images at the mirror.

`rewrite_manifest` walks edgeAgent, edgeHub and every module, asks an injected
`Resolver` what each mirrored image becomes (see `resolvers`), and splices the answers
into the text. It adds or updates the target's `registryCredentials` entry with
placeholders for the pull identity (see `credentials`). Everything else stays
byte-for-byte; what was left alone is reported with the reason. A signed manifest is
refused.

An image already served from the target is left as it is, except that `--pin
specific|digest` also pins the ones mirrored from a source (a manifest rewritten
earlier with tags can be pinned later); the fleet's own images are never touched.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mirror.deployment.credentials import credential_edits
from mirror.deployment.document import JObject, JString, parse_document, walk
from mirror.deployment.edits import Change, ChangeKind, Edit, apply_edits, replace_string
from mirror.deployment.errors import AmbiguousManifest, SignedManifest
from mirror.deployment.images import ImageKind, ImageString, classify, find_placeholders
from mirror.deployment.resolvers import PinMode, Resolver, TagResolver, Target, Unresolved
from mirror.deployment.settings import RewriteSettings
from mirror.deployment.shape import (
    DeploymentManifest,
    ModuleEntry,
    load_manifest,
)
from mirror.reference import ImageReference


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


def secret_literals(manifest: DeploymentManifest) -> tuple[str, ...]:
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
    manifest: DeploymentManifest,
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
    _refuse_ambiguous(manifest)
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
        entry_edits, entry_changes = credential_edits(manifest, target, settings)
        edits += entry_edits
        changes += entry_changes
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


def _refuse_ambiguous(manifest: DeploymentManifest) -> None:
    """A key given twice (JSON parsers keep the last; `mirror lint` reports it) is
    refused: rewriting one of the two would leave the other in force."""
    for node in walk(manifest.document.root):
        if isinstance(node, JObject) and node.duplicates():
            member = node.duplicates()[0]
            raise AmbiguousManifest(
                manifest.file,
                f"duplicate key {member.key!r}: only the last one counts; remove the other"
                " before rewriting (mirror lint shows every one)",
                manifest.document.line_of(member.key_start),
            )


def _refuse_signed(manifest: DeploymentManifest) -> None:
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
    manifest: DeploymentManifest,
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
    outcome = image_outcome(image, target=target, pin=pin, resolve=resolve, settings=settings)
    if isinstance(outcome, tuple):
        return LeftAlone(located.path, line, image.text, *outcome)
    if outcome is None:
        return None
    produced = classify(outcome)
    note = (
        "the tag is a placeholder: check the mirror once it is set"
        if (produced.kind is ImageKind.PLACEHOLDER)
        else None
    )
    change = Change(ChangeKind.IMAGE, located.path, line, image.text, outcome, note)
    return replace_string(manifest.document, located.node, outcome), change


def image_outcome(
    image: ImageString,
    *,
    target: Target,
    pin: PinMode,
    resolve: Resolver,
    settings: RewriteSettings,
    placeholders: bool = True,
) -> str | tuple[Reason, str] | None:
    """What `image` becomes: its new text, None when it stays as written, or why it is
    left alone. With `placeholders` false, a result that still holds a placeholder is
    refused (a device's config.toml has no template step to fill it in)."""
    source = image
    skipped = skip_reason(image, target, settings)
    if skipped is not None and skipped[0] is Reason.ALREADY_MIRRORED and pin is not PinMode.TAG:
        source = mirrored_source(image, target, settings) or image
        skipped = None if source is not image else skipped
    if skipped is not None:
        return skipped
    resolution = resolve(source, pin)
    if isinstance(resolution, Unresolved):
        return Reason.UNRESOLVED, resolution.reason
    produced = classify(resolution.image)
    kinds = (ImageKind.REFERENCE, ImageKind.PLACEHOLDER) if placeholders else (ImageKind.REFERENCE,)
    if produced.kind not in kinds or produced.name is None:
        detail = f"the resolver produced {resolution.image!r}: {produced.problem or 'no name'}"
        return Reason.UNRESOLVED, detail
    return None if resolution.image == image.text else resolution.image


def skip_reason(
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


def mirrored_source(
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

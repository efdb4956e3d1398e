"""Lint rules about images: grammar, placeholders, tags, runtime versions, debug builds
and where the runtime is pulled from."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mirror.deployment.images import (
    ImageKind,
    ImageString,
    Placeholder,
    PlaceholderKind,
    find_placeholders,
)
from mirror.deployment.lint.context import Check, Issue, LintContext, describe
from mirror.deployment.lint.finding import Severity
from mirror.deployment.runtime import Support
from mirror.deployment.settings import matches_any
from mirror.deployment.shape import Located, ModuleEntry, Role
from mirror.governance.versions import Tag, TagKind, parse_tag

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
MUTABLE_TAGS = {"latest", "main", "master", "dev", "develop", "nightly"}


def image_reference(ctx: LintContext) -> Iterator[Issue]:
    for module in ctx.manifest.modules:
        if module.image is not None and module.image.text is None:
            yield ctx.issue("image-reference", module.image, "settings.image must be a string")
        digest = module.settings.child("digest") if module.settings else None
        if digest is not None and not _DIGEST.match(digest.text or ""):
            yield ctx.issue(
                "image-reference", digest, "settings.digest must be sha256: and 64 hex digits"
            )
    for module, located, image in ctx.images():
        if image.kind is ImageKind.INVALID:
            yield ctx.issue(
                "image-reference",
                located,
                f"{describe(module)}: edgeAgent refuses the image {image.text!r}: {image.problem}",
            )


def unresolved_placeholder(ctx: LintContext) -> Iterator[Issue]:
    if not ctx.deployable:
        return
    for module, located, image in ctx.images():
        if image.placeholders:
            yield ctx.issue(
                "unresolved-placeholder",
                located,
                f"image of {describe(module)} still holds {_advice(image.placeholders)}",
            )
    for entry in ctx.manifest.credentials:
        for key in ("username", "password", "address"):
            found = entry.field(key)
            placeholders = _placeholders_in(found)
            if found is not None and placeholders:
                yield ctx.issue(
                    "unresolved-placeholder",
                    found,
                    f"{key} of registry credential {entry.name!r} still holds"
                    f" {_advice(placeholders)}",
                )


def _placeholders_in(found: Located | None) -> tuple[Placeholder, ...]:
    return find_placeholders(found.text) if found is not None and found.text else ()


def _advice(placeholders: tuple[Placeholder, ...]) -> str:
    shown = ", ".join(p.text for p in placeholders)
    kinds = {p.kind for p in placeholders}
    if kinds & {PlaceholderKind.MODULE, PlaceholderKind.MODULE_DIR}:
        todo = "generate the deployment from the template (iotedgedev genconfig, or VS Code)"
    elif PlaceholderKind.VARIABLE in kinds:
        todo = "substitute the variables (from .env or the pipeline) before deploying"
    else:
        todo = "replace the pipeline tokens before deploying"
    return f"{shown}: {todo}, or lint the file as a template"


def mutable_tag(ctx: LintContext) -> Iterator[Issue]:
    for module, located, image in ctx.images():
        if image.kind is ImageKind.INVALID or image.digest or _has_digest_setting(module):
            continue
        if image.kind is ImageKind.REFERENCE and image.tag is None:
            yield ctx.issue(
                "mutable-tag",
                located,
                f"{describe(module)}: no tag means :latest, which moves; pin a version tag"
                " (or a digest)",
            )
            continue
        tag = image.literal_tag
        if tag is not None and tag.lower().split("-")[0] in MUTABLE_TAGS:
            yield ctx.issue(
                "mutable-tag",
                located,
                f"{describe(module)}: tag {tag!r} moves with every push; pin a version tag"
                " and raise it with every update",
            )


def _has_digest_setting(module: ModuleEntry) -> bool:
    return module.settings is not None and module.settings.child("digest") is not None


def rolling_runtime_tag(ctx: LintContext) -> Iterator[Issue]:
    for module, located, image, tag in _runtime_tags(ctx):
        if tag.kind is TagKind.ROLLING and not image.digest and not _has_digest_setting(module):
            yield ctx.issue(
                "rolling-runtime-tag",
                located,
                f"{module.name} is on the rolling tag {image.tag}, which moves to every new"
                f" {tag.line}.x: pin a specific {tag.line}.x version or a digest for production"
                " (mirror rewrite --pin specific)",
            )


def _runtime_tags(
    ctx: LintContext,
) -> Iterator[tuple[ModuleEntry, Located, ImageString, Tag]]:
    for module, located, image in ctx.images():
        if module.role is Role.MODULE or image.literal_tag is None:
            continue
        tag = parse_tag(image.literal_tag)
        if tag.kind is not TagKind.OTHER:
            yield module, located, image, tag


def runtime_version_mismatch(ctx: LintContext) -> Iterator[Issue]:
    tags = {module.role: (located, tag) for module, located, _, tag in _runtime_tags(ctx)}
    agent, hub = tags.get(Role.AGENT), tags.get(Role.HUB)
    if agent and hub and _version(agent[1], hub[1]) != _version(hub[1], agent[1]):
        yield ctx.issue(
            "runtime-version-mismatch",
            hub[0],
            f"edgeAgent is on {agent[1].release} and edgeHub on {hub[1].release}: run both on"
            " the same version",
        )
    expected = ctx.settings.expected_daemon_version
    for role, (located, tag) in tags.items():
        if expected and str(tag.line) != expected:
            yield ctx.issue(
                "runtime-version-mismatch",
                located,
                f"{role.value} {tag.release} does not match the fleet's IoT Edge daemon"
                f" {expected}: use a {expected}.x image",
            )


def _version(tag: Tag, other: Tag) -> str | None:
    """What to compare: the full version if both are specific, else the line."""
    if tag.version is not None and other.version is not None:
        return tag.release
    return str(tag.line)


def unsupported_runtime(ctx: LintContext) -> Iterator[Issue]:
    catalog = ctx.catalog
    if ctx.settings.supported_runtime_lines is not None:
        catalog = catalog.with_supported(ctx.settings.supported_runtime_lines)
    for module, located, _, tag in _runtime_tags(ctx):
        assessment = catalog.assess(tag)
        if assessment.support is Support.SUPPORTED:
            continue
        severity = Severity.ERROR if assessment.support is Support.NEVER_RELEASED else None
        yield ctx.issue(
            "unsupported-runtime", located, f"{module.name}: {assessment.message}", severity
        )


def debug_image(ctx: LintContext) -> Iterator[Issue]:
    for module, located, image in ctx.images():
        if image.is_debug:
            yield ctx.issue(
                "debug-image",
                located,
                f"{describe(module)} uses a debug image ({image.text}): deploy the release"
                " image (without .debug) and drop the debugger create options",
            )


def public_runtime_registry(ctx: LintContext) -> Iterator[Issue]:
    target = ctx.settings.private_registry or "your private registry"
    for module, located, image in ctx.images():
        if image.name is None or image.kind is ImageKind.UPSTREAM:
            continue
        if matches_any(image.name, ctx.settings.runtime_sources):
            yield ctx.issue(
                "public-runtime-registry",
                located,
                f"{describe(module)} pulls {image.name} from the public registry: serve it"
                f" from {target} (mirror sync, then mirror rewrite)",
            )


CHECKS: dict[str, Check] = {
    "image-reference": image_reference,
    "unresolved-placeholder": unresolved_placeholder,
    "mutable-tag": mutable_tag,
    "rolling-runtime-tag": rolling_runtime_tag,
    "runtime-version-mismatch": runtime_version_mismatch,
    "unsupported-runtime": unsupported_runtime,
    "debug-image": debug_image,
    "public-runtime-registry": public_runtime_registry,
}

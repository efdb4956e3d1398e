"""Lint rules for what a device is set up with before any deployment reaches it: the
bootstrap edgeAgent of `/etc/aziot/config.toml` and the log defaults of Moby's
`/etc/docker/daemon.json`.

They report under the catalog's ids, with the same meaning as for a manifest's
edgeAgent (a user who disables `rolling-runtime-tag` disables it here too):
`public-runtime-registry`, `rolling-runtime-tag`, `unsupported-runtime`,
`debug-image` and `image-reference` for `[agent.config] image`;
`registry-credentials` and `credential-hygiene` for `[agent.config.auth]`;
`log-limits` for `[agent.config.createOptions]` and for daemon.json, whose limits,
when set, count as the fleet's daemon-wide log policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mirror.deployment.device import AGENT, AGENT_CONFIG, AUTH, CREATE_OPTIONS, IMAGE, DeviceConfig
from mirror.deployment.document import Document, JObject, JString, to_python
from mirror.deployment.images import ImageKind, ImageString, classify
from mirror.deployment.lint.containers import log_problem
from mirror.deployment.lint.context import Issue, has_placeholder
from mirror.deployment.lint.credentials import identity_problems, normalise_address
from mirror.deployment.lint.finding import Severity
from mirror.deployment.runtime import DEFAULT_CATALOG, RuntimeCatalog, Support
from mirror.deployment.settings import LintSettings, matches_any
from mirror.governance.versions import TagKind, parse_tag

Keys = tuple[str, ...]


@dataclass(frozen=True)
class DeviceContext:
    """What a device-config rule sees."""

    config: DeviceConfig
    settings: LintSettings
    catalog: RuntimeCatalog = DEFAULT_CATALOG

    def issue(self, rule: str, keys: Keys, message: str, severity: Severity | None = None) -> Issue:
        """An issue about the key at `keys` (reported where the nearest written key is)."""
        return Issue(rule, ".".join(keys), self.config.offset(*keys), message, severity)

    @property
    def target(self) -> str:
        return self.settings.private_registry or "your private registry"


def device_issues(ctx: DeviceContext) -> Iterator[Issue]:
    """Every issue of the bootstrap edgeAgent in `ctx.config`."""
    text = ctx.config.image
    if text is None:
        yield from _no_image(ctx)
        return
    image = classify(text)
    if image.kind is ImageKind.INVALID:
        yield ctx.issue(
            "image-reference", IMAGE, f"the daemon refuses the image {text!r}: {image.problem}"
        )
        return
    yield from _image(ctx, image)
    yield from _auth(ctx, image)
    yield from _log_limits(ctx)


def _no_image(ctx: DeviceContext) -> Iterator[Issue]:
    if ctx.config.value(*IMAGE) is not None:
        yield ctx.issue("image-reference", IMAGE, "[agent.config] image must be a string")
        return
    yield ctx.issue(
        "public-runtime-registry",
        IMAGE if ctx.config.has_agent else AGENT,
        "no [agent.config] image: the device starts the default edgeAgent from"
        f" mcr.microsoft.com; add the [agent] section with an image from {ctx.target}"
        " (mirror rewrite fills in the mirror once the section is there)",
    )


def _image(ctx: DeviceContext, image: ImageString) -> Iterator[Issue]:
    upstream = image.kind is ImageKind.UPSTREAM
    if image.name and not upstream and matches_any(image.name, ctx.settings.runtime_sources):
        yield ctx.issue(
            "public-runtime-registry",
            IMAGE,
            f"the device pulls its first edgeAgent, {image.name}, from the public registry:"
            f" serve it from {ctx.target} (mirror sync, then mirror rewrite config.toml)",
        )
    if image.is_debug:
        yield ctx.issue(
            "debug-image",
            IMAGE,
            f"the bootstrap edgeAgent is a debug image ({image.text}): use the release image",
        )
    yield from _runtime_version(ctx, image)


def _runtime_version(ctx: DeviceContext, image: ImageString) -> Iterator[Issue]:
    tag = parse_tag(image.literal_tag) if image.literal_tag else None
    if tag is None or tag.kind is TagKind.OTHER:
        return
    if tag.kind is TagKind.ROLLING and not image.digest:
        yield ctx.issue(
            "rolling-runtime-tag",
            IMAGE,
            f"the bootstrap edgeAgent is on the rolling tag {image.tag}, which moves to every"
            f" new {tag.line}.x: pin a specific {tag.line}.x version or a digest"
            " (mirror rewrite --pin specific config.toml)",
        )
    catalog = ctx.catalog
    if ctx.settings.supported_runtime_lines is not None:
        catalog = catalog.with_supported(ctx.settings.supported_runtime_lines)
    assessment = catalog.assess(tag)
    if assessment.support is not Support.SUPPORTED:
        severity = Severity.ERROR if assessment.support is Support.NEVER_RELEASED else None
        message = f"the bootstrap edgeAgent: {assessment.message}"
        yield ctx.issue("unsupported-runtime", IMAGE, message, severity)


def _auth(ctx: DeviceContext, image: ImageString) -> Iterator[Issue]:
    registry = image.registry_text
    if registry is None or image.kind is ImageKind.UPSTREAM or has_placeholder(registry):
        return
    normal = normalise_address(registry)
    public = normal in {r.lower() for r in ctx.settings.public_registries}
    auth = ctx.config.auth
    if auth is None:
        if not public:
            yield ctx.issue(
                "registry-credentials",
                AUTH,
                f"{registry} is a private registry and [agent.config.auth] is missing: add it"
                " with serveraddress, username and password of a pull-only identity, or the"
                " device cannot pull its first edgeAgent",
            )
        return
    yield from _auth_address(ctx, auth, registry, normal, public)
    yield from _auth_identity(ctx, auth)


def _auth_address(
    ctx: DeviceContext, auth: dict[str, Any], registry: str, normal: str, public: bool
) -> Iterator[Issue]:
    address = auth.get("serveraddress")
    if not isinstance(address, str) or has_placeholder(address):
        return
    if normalise_address(address) == normal:
        return
    if public:
        yield ctx.issue(
            "registry-credentials",
            (*AUTH, "serveraddress"),
            f"[agent.config.auth] is for {address} but the image comes from {registry}, which"
            " needs none: remove it, or correct the image",
            Severity.INFO,
        )
        return
    yield ctx.issue(
        "registry-credentials",
        (*AUTH, "serveraddress"),
        f"[agent.config.auth] is for {address} but the image comes from {registry}: set"
        f' serveraddress = "{normal}"',
    )


def _auth_identity(ctx: DeviceContext, auth: dict[str, Any]) -> Iterator[Issue]:
    username, address = auth.get("username"), auth.get("serveraddress")
    if not isinstance(username, str) or not username or has_placeholder(username):
        return
    server = address if isinstance(address, str) else None
    for message in identity_problems(
        "[agent.config.auth]", username, server, ctx.settings.push_username
    ):
        yield ctx.issue("credential-hygiene", (*AUTH, "username"), message)


def _log_limits(ctx: DeviceContext) -> Iterator[Issue]:
    """The bootstrap agent's log limits; no `createOptions` at all has none either."""
    options = ctx.config.value(*CREATE_OPTIONS)
    if ctx.settings.daemon_log_policy or not isinstance(ctx.config.value(*AGENT_CONFIG), dict):
        return
    if options is not None and not isinstance(options, dict):
        return
    host_config = (options or {}).get("HostConfig")
    log_config = host_config.get("LogConfig") if isinstance(host_config, dict) else None
    problem = log_problem(log_config)
    if problem:
        where = (*CREATE_OPTIONS, "HostConfig", "LogConfig") if options else AGENT_CONFIG
        yield ctx.issue(
            "log-limits",
            where,
            f"the bootstrap edgeAgent {problem}: set [agent.config.createOptions.HostConfig."
            'LogConfig] Type = "json-file" and Config = { max-size = "10m", max-file = "3" },'
            " or set the limits daemon-wide in /etc/docker/daemon.json",
        )


# -- Moby's daemon.json --------------------------------------------------------------------


def daemon_log_issues(document: Document) -> Iterator[Issue]:
    """The daemon-wide log settings: a driver that keeps files needs `max-size` and
    `max-file` in `log-opts` (Moby sets no limit by default)."""
    root = document.root
    if not isinstance(root, JObject):
        yield Issue("log-limits", "", root.start, "daemon.json must hold a JSON object")
        return
    driver = root.get("log-driver")
    options = root.member("log-opts")
    log_config = {
        "Type": driver.value if isinstance(driver, JString) else None,
        "Config": to_python(options.value) if options is not None else None,
    }
    problem = log_problem(log_config)
    if problem is None:
        return
    anchor = options or root.member("log-driver")
    yield Issue(
        "log-limits",
        anchor.key if anchor is not None else "",
        anchor.key_start if anchor is not None else root.start,
        f"by default every container {problem}: set"
        ' "log-driver": "local" and "log-opts": {"max-size": "10m", "max-file": "3"}'
        " in daemon.json, then restart the engine (existing containers keep their settings"
        " until they are created again)",
    )


def daemon_has_log_policy(document: Document) -> bool:
    """Whether daemon.json limits every container's logs (no issue to report)."""
    return not any(daemon_log_issues(document))

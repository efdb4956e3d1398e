"""`mirror doctor`: checks, against the real target, what the production checklist asks
of registry access, and says what to do about each finding.

- the push identity (what `mirror sync` uses) can reach the registry and push, and,
  on ACR, read and write tag attributes (locking specific tags needs it);
- the pull identity (what devices use) can pull and is refused a push (least
  privilege), is not the push identity and not the registry's admin user;
- how long the tokens in use last;
- which endpoints a device must reach (the registry, and the storage host blob
  downloads are redirected to).

Each check gives a `Finding`: pass, warn, fail or info, with advice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from mirror.errors import AuthenticationError, MirrorError, NotFound
from mirror.transport.acr import AcrMetadata, AcrTokens
from mirror.transport.registry import RegistryClient


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a check result, not a password
    WARN = "warn"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    message: str
    advice: str = ""


@dataclass(frozen=True)
class Side:
    """A registry client opened with one identity, and how to name that identity."""

    client: RegistryClient
    describe: str
    username: str | None = None
    tokens: AcrTokens | None = None


def diagnose(push: Side, pull: Side | None, repository: str, *, acr: bool) -> list[Finding]:
    """Run every check; a check that cannot run says why instead of stopping the rest."""
    findings = [check_reach(push)]
    if findings[0].status is Status.FAIL:
        return findings
    findings.append(check_push(push, repository))
    if acr:
        findings.append(check_metadata(push, repository))
    findings += check_pull(push, pull, repository)
    findings += check_tokens(push, pull)
    findings.append(check_endpoints(push, repository))
    return findings


def check_reach(side: Side) -> Finding:
    registry = side.client
    try:
        registry.ping()
    except AuthenticationError as error:
        return Finding("reach", Status.FAIL, str(error), "check the push identity's credentials")
    except MirrorError as error:
        return Finding("reach", Status.FAIL, str(error), "check the address, DNS and firewall")
    if registry.endpoint.scheme != "https":
        return Finding(
            "reach",
            Status.WARN,
            f"reached {registry.name} over plain http",
            "use TLS for anything but a test registry on loopback",
        )
    return Finding("reach", Status.PASS, f"reached {registry.name} over https")


def check_push(side: Side, repository: str) -> Finding:
    try:
        _try_upload(side.client, repository)
    except AuthenticationError as error:
        return Finding(
            "push-can-push",
            Status.FAIL,
            f"{side.describe} cannot push to {repository}: {error}",
            "assign the push identity the acrPush role on the registry",
        )
    return Finding("push-can-push", Status.PASS, f"{side.describe} can push to {repository}")


def check_metadata(side: Side, repository: str) -> Finding:
    metadata = AcrMetadata(side.client)
    try:
        states = metadata.tag_states(repository)
        if not states:
            return Finding(
                "push-can-lock",
                Status.INFO,
                f"{repository} has no tags yet: tag locking is checked once it has",
            )
        metadata.touch(repository, next(iter(sorted(states))))
    except MirrorError as error:
        return Finding(
            "push-can-lock",
            Status.FAIL,
            f"{side.describe} cannot change tag attributes: {error}",
            "locking specific tags needs metadata write (e.g. a custom role with "
            "Microsoft.ContainerRegistry/registries/metadata/write), or set "
            "lock_specific_tags: false",
        )
    return Finding("push-can-lock", Status.PASS, f"{side.describe} can lock tags")


def check_pull(push: Side, pull: Side | None, repository: str) -> list[Finding]:
    host = push.client.endpoint.host
    if pull is None:
        return [
            Finding(
                "pull-configured",
                Status.WARN,
                f"no pull identity is configured for {host}",
                f"set registries.{host}.pull to the service principal devices use (acrPull)",
            )
        ]
    findings = [_can_pull(pull, repository), _cannot_push(pull, repository)]
    if pull.describe == push.describe:
        findings.append(
            Finding(
                "pull-not-push",
                Status.FAIL,
                "devices would use the push identity",
                "give devices their own service principal with acrPull only",
            )
        )
    if pull.username and pull.username.lower() == host.split(".")[0].lower():
        findings.append(
            Finding(
                "pull-not-admin",
                Status.FAIL,
                f"the pull identity {pull.username} looks like the registry's admin user",
                "disable the admin user and use a service principal with acrPull",
            )
        )
    return findings


def _can_pull(pull: Side, repository: str) -> Finding:
    try:
        pull.client.list_tags(repository)
    except NotFound:
        return Finding(
            "pull-can-pull", Status.PASS, f"{pull.describe} can read {repository} (empty)"
        )
    except MirrorError as error:
        return Finding(
            "pull-can-pull",
            Status.FAIL,
            f"{pull.describe} cannot pull {repository}: {error}",
            "assign the pull identity the acrPull role",
        )
    return Finding("pull-can-pull", Status.PASS, f"{pull.describe} can pull {repository}")


def _cannot_push(pull: Side, repository: str) -> Finding:
    try:
        _try_upload(pull.client, repository)
    except AuthenticationError:
        return Finding(
            "pull-least-privilege",
            Status.PASS,
            f"{pull.describe} is refused a push (least privilege)",
        )
    except MirrorError as error:
        return Finding("pull-least-privilege", Status.WARN, f"could not check: {error}")
    return Finding(
        "pull-least-privilege",
        Status.FAIL,
        f"{pull.describe} can push: a device could overwrite the mirrored images",
        "remove acrPush (and any broader role) from the pull identity; keep acrPull only",
    )


def _try_upload(registry: RegistryClient, repository: str) -> None:
    """Start an upload session (proves push permission) and abandon it at once."""
    session = registry.start_upload(repository)
    registry.cancel_upload(session)


def check_tokens(
    push: Side, pull: Side | None, now: Callable[[], float] = time.time
) -> list[Finding]:
    findings = []
    for role, side in (("push", push), ("pull", pull)):
        if side is None:
            continue
        expires = side.tokens.refresh_expires_at if side.tokens else None
        if expires is not None:
            hours = (expires - now()) / 3600
            findings.append(
                Finding(
                    f"{role}-token",
                    Status.INFO,
                    f"{side.describe}: ACR refresh token valid for {hours:.1f} h more "
                    "(mirror renews it before it expires)",
                )
            )
        else:
            findings.append(
                Finding(
                    f"{role}-token",
                    Status.INFO,
                    f"{side.describe}: a password or secret, valid until it is rotated",
                    "track the secret's expiry in Microsoft Entra ID and rotate it before then",
                )
            )
    return findings


def check_endpoints(side: Side, repository: str) -> Finding:
    registry = side.client
    hosts = [f"{registry.endpoint.host}:443"]
    storage = _storage_host(registry, repository)
    if storage:
        hosts.append(f"{storage}:443 (blob downloads are redirected there)")
    else:
        hosts.append(
            "the registry's data endpoints (*.blob.core.windows.net, or "
            "<registry>.<region>.data.azurecr.io with dedicated data endpoints)"
        )
    return Finding(
        "device-endpoints",
        Status.INFO,
        "devices must reach " + " and ".join(hosts),
        "open these on port 443 in the devices' firewall and proxy",
    )


def _storage_host(registry: RegistryClient, repository: str) -> str | None:
    try:
        tags = registry.list_tags(repository)
        if not tags:
            return None
        index = registry.get_manifest(repository, tags[0])
        children = index.children()
        image = registry.get_manifest(repository, children[0].digest) if children else index
        blobs = image.blobs()
        return registry.storage_host(repository, blobs[0]) if blobs else None
    except MirrorError:
        return None

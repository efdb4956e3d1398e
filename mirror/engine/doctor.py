"""`mirror doctor`: checks, against the real target, what the production checklist asks
of registry access, and says what to do about each finding.

- the push identity (what `mirror sync` uses) can reach the registry and push, and,
  on ACR, read and write tag attributes (locking specific tags needs it);
- the pull identity (what devices use) can pull and is refused a push (least
  privilege), is not the push identity and not the registry's admin user;
- how long the tokens in use last;
- which endpoints a device must reach (the registry, and the storage host blob
  downloads are redirected to).

Each check gives a `CheckResult`: pass, warn, fail or info, with advice.

"Can push" is proved by a push that leaves nothing behind: an upload session opened
and completed with the empty blob (`sha256:e3b0...`, zero bytes, which any registry
may hold). Cancelling the session instead would need the `delete` action, which a
push-only identity (ACR's acrPush) lacks; an abandoned session would linger until the
registry expires it. Every step must succeed for a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from mirror.errors import AuthenticationError, MirrorError, NotFound
from mirror.transport.acr.metadata import AcrMetadata
from mirror.transport.acr.tokens import AcrTokens
from mirror.transport.registry import RegistryClient


class CheckStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a check result, not a password
    WARN = "warn"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    status: CheckStatus
    message: str
    advice: str = ""


@dataclass(frozen=True)
class Access:
    """A registry client opened with one identity, and how to name that identity."""

    client: RegistryClient
    describe: str
    username: str | None = None
    tokens: AcrTokens | None = None


def diagnose(push: Access, pull: Access | None, repository: str, *, acr: bool) -> list[CheckResult]:
    """Run every check; a check that cannot run says why instead of stopping the rest."""
    findings = [check_reach(push)]
    if findings[0].status is CheckStatus.FAIL:
        return findings
    findings.append(check_push(push, repository))
    if acr:
        findings.append(check_metadata(push, repository))
    findings += check_pull(push, pull, repository)
    findings += check_tokens(push, pull, acr=acr)
    findings.append(check_endpoints(push, repository, acr=acr))
    return findings


def check_reach(side: Access) -> CheckResult:
    registry = side.client
    try:
        registry.ping()
    except AuthenticationError as error:
        return CheckResult(
            "reach", CheckStatus.FAIL, str(error), "check the push identity's credentials"
        )
    except MirrorError as error:
        return CheckResult(
            "reach", CheckStatus.FAIL, str(error), "check the address, DNS and firewall"
        )
    if registry.endpoint.scheme != "https":
        return CheckResult(
            "reach",
            CheckStatus.WARN,
            f"reached {registry.name} over plain http",
            "use TLS for anything but a test registry on loopback",
        )
    return CheckResult("reach", CheckStatus.PASS, f"reached {registry.name} over https")


def check_push(side: Access, repository: str) -> CheckResult:
    try:
        _try_upload(side.client, repository)
    except AuthenticationError as error:
        return CheckResult(
            "push-can-push",
            CheckStatus.FAIL,
            f"{side.describe} cannot push to {repository}: {error}",
            "assign the push identity the acrPush role on the registry",
        )
    except MirrorError as error:
        return CheckResult(
            "push-can-push",
            CheckStatus.FAIL,
            f"{side.describe} could not complete a push to {repository}: {error}",
            "check the registry accepts pushes (quota, read-only mode, a proxy in between)",
        )
    return CheckResult(
        "push-can-push", CheckStatus.PASS, f"{side.describe} can push to {repository}"
    )


def check_metadata(side: Access, repository: str) -> CheckResult:
    metadata = AcrMetadata(side.client)
    try:
        states = metadata.tag_states(repository)
        if not states:
            return CheckResult(
                "push-can-lock",
                CheckStatus.INFO,
                f"{repository} has no tags yet: tag locking is checked once it has",
            )
        metadata.touch(repository, next(iter(sorted(states))))
    except MirrorError as error:
        return CheckResult(
            "push-can-lock",
            CheckStatus.FAIL,
            f"{side.describe} cannot change tag attributes: {error}",
            "locking specific tags needs metadata write (e.g. a custom role with "
            "Microsoft.ContainerRegistry/registries/metadata/write), or set "
            "lock_specific_tags: false",
        )
    return CheckResult("push-can-lock", CheckStatus.PASS, f"{side.describe} can lock tags")


def check_pull(push: Access, pull: Access | None, repository: str) -> list[CheckResult]:
    host = push.client.endpoint.host
    if pull is None:
        return [
            CheckResult(
                "pull-configured",
                CheckStatus.WARN,
                f"no pull identity is configured for {host}",
                f"set registries.{host}.pull to the service principal devices use (acrPull)",
            )
        ]
    findings = [_can_pull(pull, repository), _cannot_push(pull, repository)]
    if pull.describe == push.describe:
        findings.append(
            CheckResult(
                "pull-not-push",
                CheckStatus.FAIL,
                "devices would use the push identity",
                "give devices their own service principal with acrPull only",
            )
        )
    if pull.username and pull.username.lower() == host.split(".")[0].lower():
        findings.append(
            CheckResult(
                "pull-not-admin",
                CheckStatus.FAIL,
                f"the pull identity {pull.username} looks like the registry's admin user",
                "disable the admin user and use a service principal with acrPull",
            )
        )
    return findings


def _can_pull(pull: Access, repository: str) -> CheckResult:
    try:
        pull.client.list_tags(repository)
    except NotFound:
        return CheckResult(
            "pull-can-pull", CheckStatus.PASS, f"{pull.describe} can read {repository} (empty)"
        )
    except MirrorError as error:
        return CheckResult(
            "pull-can-pull",
            CheckStatus.FAIL,
            f"{pull.describe} cannot pull {repository}: {error}",
            "assign the pull identity the acrPull role",
        )
    return CheckResult("pull-can-pull", CheckStatus.PASS, f"{pull.describe} can pull {repository}")


def _cannot_push(pull: Access, repository: str) -> CheckResult:
    try:
        _try_upload(pull.client, repository)
    except AuthenticationError:
        return CheckResult(
            "pull-least-privilege",
            CheckStatus.PASS,
            f"{pull.describe} is refused a push (least privilege)",
        )
    except MirrorError as error:
        return CheckResult("pull-least-privilege", CheckStatus.WARN, f"could not check: {error}")
    return CheckResult(
        "pull-least-privilege",
        CheckStatus.FAIL,
        f"{pull.describe} can push: a device could overwrite the mirrored images",
        "remove acrPush (and any broader role) from the pull identity; keep acrPull only",
    )


def _try_upload(registry: RegistryClient, repository: str) -> None:
    """Push the empty blob: open an upload session and complete it with zero bytes
    (proves push permission; needs no delete and leaves no session open)."""
    session = registry.start_upload(repository)
    registry.finish_upload(session, repository, b"")


def check_tokens(
    push: Access, pull: Access | None, now: Callable[[], float] = time.time, *, acr: bool = True
) -> list[CheckResult]:
    findings = []
    for role, side in (("push", push), ("pull", pull)):
        if side is None:
            continue
        expires = side.tokens.refresh_expires_at if side.tokens else None
        if expires is not None:
            hours = (expires - now()) / 3600
            findings.append(
                CheckResult(
                    f"{role}-token",
                    CheckStatus.INFO,
                    f"{side.describe}: ACR refresh token valid for {hours:.1f} h more "
                    "(mirror renews it before it expires)",
                )
            )
        else:
            findings.append(
                CheckResult(
                    f"{role}-token",
                    CheckStatus.INFO,
                    f"{side.describe}: a password or secret, valid until it is rotated",
                    "track the secret's expiry in Microsoft Entra ID and rotate it before then"
                    if acr
                    else "rotate it on the registry's schedule, and update the devices' copy",
                )
            )
    return findings


def check_endpoints(side: Access, repository: str, *, acr: bool = True) -> CheckResult:
    registry = side.client
    hosts = [_with_port(registry.endpoint.host, registry.endpoint.scheme)]
    storage = _storage_host(registry, repository)
    if storage:
        hosts.append(f"{_with_port(storage, 'https')} (blob downloads are redirected there)")
    elif acr:
        hosts.append(
            "the registry's data endpoints (*.blob.core.windows.net, or "
            "<registry>.<region>.data.azurecr.io with dedicated data endpoints)"
        )
    return CheckResult(
        "device-endpoints",
        CheckStatus.INFO,
        "devices must reach " + " and ".join(hosts),
        "open these in the devices' firewall and proxy",
    )


def _with_port(host: str, scheme: str) -> str:
    """`host:port`, the scheme's port when the host names none (`[::1]:5000` as is)."""
    if host.rpartition("]")[2].count(":") == 1:
        return host
    return f"{host}:{443 if scheme == 'https' else 80}"


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

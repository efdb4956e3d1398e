"""Lint rules about registry credentials: present where needed, unused, and safe."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mirror.deployment.images import ImageKind
from mirror.deployment.lint.context import Check, Issue, LintContext, has_placeholder
from mirror.deployment.lint.finding import Severity
from mirror.deployment.shape import CredentialEntry

_DOCKER_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def normalise_address(address: str) -> str:
    """A registry address as compared with image registries (`https://X/v1/` -> `x`)."""
    host = re.sub(r"^[a-z]+://", "", address.strip().lower()).split("/")[0]
    return "docker.io" if host in _DOCKER_HUB_ALIASES else host


def registry_credentials(ctx: LintContext) -> Iterator[Issue]:
    addresses = {
        normalise_address(text): entry
        for entry in ctx.manifest.credentials
        if (text := entry.text("address")) is not None
    }
    unknown_address = any(has_placeholder(a) for a in addresses)
    used: set[str] = set()
    all_known = True
    public = {r.lower() for r in ctx.settings.public_registries}
    for _, located, image in ctx.images():
        registry = image.registry_text
        if registry is None or image.kind is ImageKind.UPSTREAM:
            all_known &= image.kind is ImageKind.UPSTREAM
            continue
        normal = normalise_address(registry)
        used.add(normal)
        if normal in public or normal in addresses or unknown_address or has_placeholder(normal):
            continue
        yield ctx.issue(
            "registry-credentials",
            located,
            f"no registryCredentials entry has the address {registry}: add one (with a"
            " pull-only identity) so edgeAgent can pull this image",
        )
    if all_known:
        yield from _unused(ctx, addresses, used)


def _unused(
    ctx: LintContext, addresses: dict[str, CredentialEntry], used: set[str]
) -> Iterator[Issue]:
    for address, entry in addresses.items():
        if address in used or has_placeholder(address):
            continue
        yield ctx.issue(
            "registry-credentials",
            entry.located,
            f"registry credential {entry.name!r} (address {entry.text('address')}) is used by"
            " no image: remove it, or correct its address",
            Severity.INFO,
        )


def credential_hygiene(ctx: LintContext) -> Iterator[Issue]:
    for entry in ctx.manifest.credentials:
        yield from _literal_secret(ctx, entry)
        username = entry.text("username")
        address = entry.text("address")
        if not username or has_placeholder(username):
            continue
        where = entry.field("username") or entry.located
        for message in identity_problems(
            f"registry credential {entry.name!r}", username, address, ctx.settings.push_username
        ):
            yield ctx.issue("credential-hygiene", where, message)


def identity_problems(
    who: str, username: str, address: str | None, push_username: str | None
) -> list[str]:
    """What is wrong with the identity devices pull as (`who` names where it is set):
    the registry's admin user, or the identity the mirror pushes with."""
    problems = []
    if address and username.lower() == normalise_address(address).split(".")[0]:
        problems.append(
            f"{who} uses the registry's admin user: give devices a token or service"
            " principal with pull rights only (acrPull) and disable the admin user"
        )
    if push_username and username.lower() == push_username.lower():
        problems.append(
            f"{who} is the identity the mirror pushes with: devices must get a separate"
            " pull-only identity"
        )
    return problems


def _literal_secret(ctx: LintContext, entry: CredentialEntry) -> Iterator[Issue]:
    password = entry.field("password")
    if ctx.deployable or password is None or not password.text:
        return
    if not has_placeholder(password.text):
        yield ctx.issue(
            "credential-hygiene",
            password,
            f"the template holds the password of registry credential {entry.name!r}: reference"
            " a variable instead (${NAME}, set from .env or the pipeline) and rotate the"
            " password",
        )


CHECKS: dict[str, Check] = {
    "registry-credentials": registry_credentials,
    "credential-hygiene": credential_hygiene,
}

"""Opening the stores a command works on, from `--source`/`--target` values and config.

The one place that turns settings into live clients: endpoint rules (TLS, insecure),
the address to dial (`address`), credentials (config, then Docker's config.json), auth,
connection limits, and on ACR the `HEAD` that asks whether a blob is already there
(ACR answers a mount of a blob it holds with 202 and a new session, not 201).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from mirror.errors import ConfigError
from mirror.settings.config import Config
from mirror.settings.registries import RegistrySettings, split_host_port
from mirror.transport.acr import is_acr
from mirror.transport.acr.metadata import AcrMetadata
from mirror.transport.acr.tokens import AcrTokens, EntraCredential
from mirror.transport.auth import DistributionTokens, RegistryAuth, TokenSource
from mirror.transport.dockerconfig import docker_login
from mirror.transport.endpoint import Endpoint
from mirror.transport.http import http_client
from mirror.transport.identities import AzureDefault, BasicLogin, EntraIdentity, Identity
from mirror.transport.layout import OciLayout
from mirror.transport.registry import RegistryClient
from mirror.transport.store import LayoutLocation, RegistryLocation, Store, parse_location
from mirror.transport.tls import context_for


def host_of(text: str) -> str:
    """The `host[:port]` a `--source`/`--target` value names (lowercase)."""
    rest = urlsplit(text).netloc if "://" in text else text.strip("/").partition("/")[0]
    return rest.lower()


def open_store(
    text: str, config: Config, *, push: bool = False, credential: EntraCredential | None = None
) -> Store:
    """A registry client or an OCI layout for `text`; `push` when it will be written.

    `credential` replaces the configured Microsoft Entra identity (for ACR registries).
    """
    settings = config.registry(host_of(text))
    location = parse_location(text, insecure=settings.insecure)
    if isinstance(location, LayoutLocation):
        return OciLayout(location.path, create=push)
    return open_registry(location, settings, config, push=push, credential=credential)


def open_registry(
    location: RegistryLocation,
    settings: RegistrySettings,
    config: Config,
    *,
    push: bool,
    credential: EntraCredential | None = None,
    source: TokenSource | None = None,
) -> RegistryClient:
    """A client for the registry, authenticating as the identity for the role (or
    with `source`, or the injected Entra `credential`)."""
    endpoint = location.endpoint
    if source is None:
        source = token_source(endpoint, settings, push=push, credential=credential)
    # one token cache for every thread's client
    auth = RegistryAuth(source, push=push, realm_hosts=settings.token_realms)
    verify = tls_context(settings)
    addresses = dial_addresses(endpoint, settings)
    return RegistryClient(
        endpoint,
        lambda: http_client(auth=auth, verify=verify, addresses=addresses),
        prefix=location.prefix,
        check_presence=is_acr_registry(endpoint, settings),
    )


def dial_addresses(
    endpoint: Endpoint, settings: RegistrySettings
) -> dict[tuple[str, int], tuple[str, int]]:
    """The registry's (host, port) -> the address to dial instead, when `address` is set."""
    if settings.address is None:
        return {}
    host, port = split_host_port(endpoint.host, 443 if endpoint.scheme == "https" else 80)
    return {(host, port): split_host_port(settings.address, port)}


def is_acr_registry(endpoint: Endpoint, settings: RegistrySettings) -> bool:
    return settings.acr if settings.acr is not None else is_acr(endpoint.host)


def token_source(
    endpoint: Endpoint,
    settings: RegistrySettings,
    *,
    push: bool,
    credential: EntraCredential | None = None,
) -> TokenSource:
    """How tokens are obtained for this registry and role.

    The configured identity (`push` / `pull`, or `username` + `password_env`), else a
    `docker login`; an ACR registry with neither uses azure-identity's default chain
    (the AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET variables among them).
    """
    if credential is not None:
        return AcrTokens(credential, describe="the given credential")
    identity = settings.identity(push=push)
    if identity is not None:
        return identity_tokens(identity, endpoint, settings)
    login = docker_login(endpoint.host)
    if login is not None:
        return DistributionTokens(login.username, login.password.get_secret_value())
    if is_acr_registry(endpoint, settings):
        return _entra_tokens(AzureDefault(type="azure-default"))
    return DistributionTokens()


def identity_tokens(
    identity: Identity, endpoint: Endpoint, settings: RegistrySettings
) -> TokenSource:
    """The token source for one configured identity."""
    if isinstance(identity, BasicLogin):
        return DistributionTokens(identity.username, identity.password().get_secret_value())
    if not is_acr_registry(endpoint, settings):
        raise ConfigError(
            f"{endpoint.host}: Microsoft Entra identities work with Azure Container "
            "Registry only (set `acr: true` if this is one)"
        )
    return _entra_tokens(identity)


def _entra_tokens(identity: EntraIdentity) -> AcrTokens:
    from mirror.transport.acr.entra import credential

    return AcrTokens(credential(identity), describe=identity.describe())


def acr_metadata(store: Store, config: Config) -> AcrMetadata | None:
    """The metadata API of `store` if it is an ACR registry that locks specific tags."""
    if not isinstance(store, RegistryClient):
        return None
    settings = config.registry(store.endpoint.host)
    if not (is_acr_registry(store.endpoint, settings) and settings.lock_specific_tags):
        return None
    return AcrMetadata(store)


def tls_context(settings: RegistrySettings) -> ssl.SSLContext:
    """The TLS context for a registry, shared by all its clients (loading a CA bundle
    is the slow part of creating an HTTP client)."""
    return context_for(settings.ca_bundle)

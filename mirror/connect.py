"""Opening the stores a command works on, from `--source`/`--target` values and config.

The one place that turns settings into live clients: endpoint rules (TLS, insecure),
credentials (config, then Docker's config.json), auth and connection limits.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from mirror.config import Config, RegistrySettings
from mirror.transport.auth import DistributionTokens, RegistryAuth, TokenSource
from mirror.transport.credentials import Login, docker_login
from mirror.transport.endpoint import Endpoint
from mirror.transport.layout import OciLayout
from mirror.transport.registry import RegistryClient, http_client
from mirror.transport.store import LayoutLocation, RegistryLocation, Store, parse_location


def host_of(text: str) -> str:
    """The `host[:port]` a `--source`/`--target` value names (lowercase)."""
    rest = urlsplit(text).netloc if "://" in text else text.strip("/").partition("/")[0]
    return rest.lower()


def open_store(text: str, config: Config, *, push: bool = False) -> Store:
    """A registry client or an OCI layout for `text`; `push` when it will be written."""
    settings = config.registry(host_of(text))
    location = parse_location(text, insecure=settings.insecure)
    if isinstance(location, LayoutLocation):
        return OciLayout(location.path, create=push)
    return open_registry(location, settings, config, push=push)


def open_registry(
    location: RegistryLocation, settings: RegistrySettings, config: Config, *, push: bool
) -> RegistryClient:
    endpoint = location.endpoint
    auth = RegistryAuth(token_source(endpoint, settings), push=push)
    http = http_client(
        auth=auth,
        connections=max(16, config.concurrency * 2),
        verify=tls_context(settings),
    )
    return RegistryClient(endpoint, http, prefix=location.prefix)


def token_source(endpoint: Endpoint, settings: RegistrySettings) -> TokenSource:
    login = registry_login(endpoint, settings)
    if login is None:
        return DistributionTokens()
    return DistributionTokens(login.username, login.password.get_secret_value())


def registry_login(endpoint: Endpoint, settings: RegistrySettings) -> Login | None:
    """Credentials from the config (user + password variable), else Docker's config.json."""
    password = settings.password()
    if settings.username and password is not None:
        return Login(settings.username, password)
    return docker_login(endpoint.host)


def tls_context(settings: RegistrySettings) -> ssl.SSLContext | bool:
    if settings.ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(settings.ca_bundle))

"""pytest fixtures for the ACR and Entra ID stand-ins (load with `pytest_plugins`).

Real: the registry (Debian's `docker-registry`, token auth) and its checks of the
pull/push/delete actions in every bearer token. Stand-ins, because ACR and Entra ID
cannot run here: the token service (`/oauth2/exchange`, `/oauth2/token`), the metadata
API (`/acr/v1/...`) and tag/manifest locks (`tests/support/acr.py`), and Entra ID
(`tests/support/entra.py`).

- `entra`: a started `EntraStandIn` (HTTPS on 127.0.0.1; `entra.authority`,
  `entra.ca_bundle`, `entra.tenant_id`).
- `acr`: an `AcrSetup`: a started ACR stand-in with anonymous pull off and
  a push service principal, a pull one, an over-privileged "pull" one and a
  repository-scoped pull token.
- `acr_factory`: builds more stand-ins with other settings (anonymous pull, TLS, a
  login-server name, a real name it is reached under (`reached_as`, with `tls` a
  certificate for it), cross-repository mounts, token lifetimes); all are stopped at
  teardown.

Controls on `acr.service` (an `AcrStandIn`): `counters` (exchanges, tokens, the scopes
each token request asked for, every request with its path as sent), `open_uploads`
(upload sessions neither completed nor cancelled), `hooks` (callbacks after each
request), `expire_refresh_tokens()`,
`expire_access_tokens()`, `refresh_token_lifetime` / `access_token_lifetime` (seconds,
for tokens issued afterwards), `lock(repo, tag_or_digest)` / `unlock(...)` /
`attributes(...)`, `assign(app, *roles)`, `add_token(...)`, and `registry` (the real
registry: `registry.requests()` is its own access log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.acr import (
    ACR_PULL,
    ACR_PUSH,
    METADATA_WRITE,
    AcrCounters,
    AcrStandIn,
    RepositoryToken,
)
from tests.support.entra import EntraApp, EntraCredential, EntraStandIn


@dataclass(frozen=True)
class AcrSetup:
    """A started ACR stand-in and the identities configured on it.

    - `push`: service principal with acrPush and metadata write (can lock tags).
    - `pull`: service principal with acrPull only (least privilege for pulling).
    - `pull_can_push`: a "pull" service principal that was given acrPush by mistake.
    - `pull_token`: repository-scoped token, pull + metadata_read on every repository.

    Entra apps carry `client_id`, `secret`, `object_id`; `entra.tenant_id` is the tenant.
    """

    service: AcrStandIn
    entra: EntraStandIn
    push: EntraApp
    pull: EntraApp
    pull_can_push: EntraApp
    pull_token: RepositoryToken

    @property
    def url(self) -> str:
        """Registry endpoint, e.g. `http://127.0.0.1:41234` (plain HTTP on loopback)."""
        return self.service.url

    @property
    def name(self) -> str:
        """Login server and token `service` (`127.0.0.1:<port>` unless configured)."""
        return self.service.name

    @property
    def counters(self) -> AcrCounters:
        return self.service.counters

    def credential(self, app: EntraApp) -> EntraCredential:
        """An in-process azure-core `TokenCredential` for `app` (counts its calls)."""
        return self.entra.credential(app)


@pytest.fixture
def entra(tmp_path: Path) -> Iterator[EntraStandIn]:
    """The Entra ID stand-in with its HTTPS token endpoint started."""
    stand_in = EntraStandIn(tmp_path / "entra").start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def acr_factory(tmp_path: Path, entra: EntraStandIn) -> Iterator[Callable[..., AcrStandIn]]:
    """`acr_factory(**kwargs)` -> a started `AcrStandIn(root, entra, **kwargs)`."""
    started: list[AcrStandIn] = []

    def build(**kwargs: Any) -> AcrStandIn:
        service = AcrStandIn(tmp_path / f"acr{len(started)}", entra, **kwargs)
        started.append(service)
        return service.start()

    yield build
    for service in started:
        service.stop()


@pytest.fixture
def acr(acr_factory: Callable[..., AcrStandIn], entra: EntraStandIn) -> AcrSetup:
    """An ACR stand-in (anonymous pull off) with push, pull and over-privileged identities."""
    service = acr_factory()
    return AcrSetup(
        service=service,
        entra=entra,
        push=service.assign(entra.register("mirror-push"), ACR_PUSH, METADATA_WRITE),
        pull=service.assign(entra.register("edge-pull"), ACR_PULL),
        pull_can_push=service.assign(entra.register("edge-pull-overprivileged"), ACR_PUSH),
        pull_token=service.add_token("edge-pull-token", {"*": ["pull", "metadata_read"]}),
    )

"""Shared fixtures: real registries on 127.0.0.1, a seeder, and stores opened on them.

Every registry is a real `docker-registry` process (CNCF distribution 2.8) with its
own storage and access log; nothing in these tests fakes the distribution API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.transport.auth import DistributionTokens, RegistryAuth
from mirror.transport.endpoint import Endpoint, RetryPolicy
from mirror.transport.http import http_client
from mirror.transport.registry import RegistryClient
from tests.support.images import Seeder
from tests.support.postgres import PostgresServer
from tests.support.registry import Registry, ServerGuard

pytest_plugins = ["tests.support.acr_fixtures"]

# Fixtures that start a server process: a test using one is in the `registry` tier.
SERVER_FIXTURES = frozenset({"upstream", "target", "acr", "acr_factory", "postgres"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts a server `registry`, so that `pytest -m "not registry"`
    is the fast tier; `ServerGuard` catches a test that starts one some other way."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        parameters = set(callspec.params) if callspec is not None else set()  # not fixtures
        if SERVER_FIXTURES & (set(getattr(item, "fixturenames", ())) - parameters):
            item.add_marker(pytest.mark.registry)


@pytest.fixture(autouse=True)
def server_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    ServerGuard.allowed = request.node.get_closest_marker("registry") is not None
    yield
    ServerGuard.allowed = True


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and the `mirror` processes it starts) keeps its state, such as the
    ledger, in its own temporary directory, never in the user's home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; tests create their own databases in it."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Registry]:
    """A registry standing in for mcr.microsoft.com."""
    registry = Registry(tmp_path / "upstream", "upstream").start()
    yield registry
    registry.stop()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Registry]:
    """A registry standing in for the private mirror."""
    registry = Registry(tmp_path / "target", "target").start()
    yield registry
    registry.stop()


@pytest.fixture
def seeder(upstream: Registry) -> Iterator[Seeder]:
    seeder = Seeder(upstream.url)
    yield seeder
    seeder.close()


@pytest.fixture
def target_seeder(target: Registry) -> Iterator[Seeder]:
    """Reads (and, for setting up a scenario, writes) the target directly."""
    seeder = Seeder(target.url)
    yield seeder
    seeder.close()


def client_for(registry: Registry, *, push: bool = False, attempts: int = 2) -> RegistryClient:
    auth = RegistryAuth(DistributionTokens(), push=push)
    retry = RetryPolicy(attempts=attempts, backoff=0.01)
    return RegistryClient(Endpoint.parse(registry.url), lambda: http_client(auth=auth), retry)


@pytest.fixture
def source_client(upstream: Registry) -> Iterator[RegistryClient]:
    client = client_for(upstream)
    yield client
    client.close()


@pytest.fixture
def target_client(target: Registry) -> Iterator[RegistryClient]:
    client = client_for(target, push=True)
    yield client
    client.close()

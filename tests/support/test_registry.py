"""The test registries themselves: each answers as itself, and one whose free port was
taken by another server (another test process can bind it between the pick and the
registry's own bind) starts on another port instead of talking to that server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import registry as registries
from tests.support.registry import IDENTITY_HEADER, PortTaken, Registry

pytestmark = pytest.mark.registry


@pytest.fixture
def occupant(tmp_path: Path) -> Iterator[Registry]:
    """A registry already listening: the server that took the port."""
    started = Registry(tmp_path / "occupant", "occupant").start()
    yield started
    started.stop()


def test_each_registry_answers_with_its_own_identity(occupant: Registry) -> None:
    answer = httpx.get(f"{occupant.url}/v2/")
    assert answer.headers[IDENTITY_HEADER] == occupant.identity


def test_a_taken_free_port_is_replaced_by_another(
    occupant: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks = iter([occupant.port])
    free_port = registries.free_port
    monkeypatch.setattr(registries, "free_port", lambda: next(picks, None) or free_port())

    late = Registry(tmp_path / "late", "late").start()
    try:
        assert late.port != occupant.port
        assert httpx.get(f"{late.url}/v2/").headers[IDENTITY_HEADER] == late.identity
    finally:
        late.stop()


def test_a_taken_fixed_port_is_an_error(occupant: Registry, tmp_path: Path) -> None:
    with pytest.raises(PortTaken, match=occupant.address):
        Registry(tmp_path / "late", "late", port=occupant.port).start()

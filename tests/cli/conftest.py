"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.manifests import MANIFEST


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (no mirror.yaml) with one manifest, d.json."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.json").write_text(MANIFEST)
    return tmp_path

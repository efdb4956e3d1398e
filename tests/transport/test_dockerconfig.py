"""Docker's config.json as `docker login` and credential helpers leave it."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from mirror.errors import ConfigError
from mirror.transport.dockerconfig import docker_config_path, docker_login


def config(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_auths_entries(tmp_path: Path) -> None:
    auth = base64.b64encode(b"mirror:pa:ss").decode()
    path = config(
        tmp_path,
        {
            "auths": {
                "registry.local:5000": {"auth": auth},
                "https://index.docker.io/v1/": {"username": "hub", "password": "h"},
                "myacr.azurecr.io": {"identitytoken": "refresh-token"},
            }
        },
    )
    login = docker_login("registry.local:5000", path)
    assert login is not None
    assert (login.username, login.password.get_secret_value()) == ("mirror", "pa:ss")
    assert "pa:ss" not in repr(login)
    hub = docker_login("docker.io", path)
    assert hub is not None and hub.username == "hub"
    acr = docker_login("myacr.azurecr.io", path)
    assert acr is not None
    assert acr.username == "00000000-0000-0000-0000-000000000000"
    assert docker_login("other.example.com", path) is None
    assert docker_login("x", tmp_path / "absent.json") is None


def test_credential_helpers_are_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\nread host\n"
        'if [ "$host" = "registry.local" ]; then echo \'{"Username": "u", "Secret": "s"}\'; '
        "else exit 1; fi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    path = config(tmp_path, {"credHelpers": {"registry.local": "fake"}, "credsStore": "fake"})
    login = docker_login("registry.local", path)
    assert login is not None
    assert (login.username, login.password.get_secret_value()) == ("u", "s")
    assert docker_login("elsewhere", path) is None  # the store has nothing for it


def test_a_missing_helper_and_a_broken_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="docker-credential-nowhere is not installed"):
        docker_login("r", config(tmp_path, {"credsStore": "nowhere"}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigError, match="unreadable Docker config"):
        docker_login("r", broken)


def test_docker_config_location() -> None:
    assert docker_config_path({"DOCKER_CONFIG": "/etc/docker-x"}) == Path(
        "/etc/docker-x/config.json"
    )

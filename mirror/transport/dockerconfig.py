"""Registry credentials from Docker's `config.json` (auths, credHelpers, credsStore).

Looked up per registry host; nothing is read until a registry is opened, and the
values are only ever handed to an `httpx.Auth`, never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from mirror.errors import ConfigError

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: SecretStr = field(repr=False)


def docker_config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def docker_login(host: str, path: Path | None = None) -> Login | None:
    """The login `docker login <host>` stored, if any."""
    path = path or docker_config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable Docker config ({exc})") from None
    if not isinstance(config, dict):
        return None
    keys = _keys_for(host)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _from_helper(str(helpers[key]), host)
    auths = config.get("auths") or {}
    for key in keys:
        entry = auths.get(key) or auths.get(f"https://{key}")
        if isinstance(entry, dict):
            login = _from_entry(entry, path)
            if login is not None:
                return login
    store = config.get("credsStore")
    return _from_helper(str(store), host) if store else None


def _keys_for(host: str) -> tuple[str, ...]:
    return _DOCKER_HUB_KEYS if host in _DOCKER_HUB_KEYS else (host,)


def _from_entry(entry: dict[str, object], path: Path) -> Login | None:
    if isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
        # An OAuth2 refresh token (ACR's `az acr login`); docker sends it as the password
        # with the fixed user name below.
        return Login("00000000-0000-0000-0000-000000000000", SecretStr(str(entry["identitytoken"])))
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            username, _, password = base64.b64decode(auth).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"{path}: malformed 'auth' entry") from None
        return Login(username, SecretStr(password))
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Login(str(entry["username"]), SecretStr(str(entry["password"])))
    return None


def _from_helper(helper: str, host: str) -> Login | None:
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise ConfigError(f"Docker credential helper docker-credential-{helper} is not installed")
    result = subprocess.run(  # noqa: S603 - the helper named by the user's Docker config
        [program, "get"], input=host.encode(), capture_output=True, timeout=30, check=False
    )
    if result.returncode != 0:
        return None
    try:
        data = json.loads(result.stdout)
        return Login(str(data["Username"]), SecretStr(str(data["Secret"])))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"docker-credential-{helper} returned malformed output") from None

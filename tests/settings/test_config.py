"""Configuration: validated once at load, errors naming file, line and key; secrets
only ever read from the environment, when needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.errors import ConfigError
from mirror.settings.config import Config, load_config
from mirror.transport.identities import BasicLogin, ServicePrincipal, read_secret


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(text)
    return path


def test_no_file_means_the_defaults(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path)
    assert config == Config()
    assert config.source == "mcr.microsoft.com"
    assert config.target == "oci:./mirror-store"
    assert config.repositories == ("azureiotedge-agent", "azureiotedge-hub")


def test_mirror_yaml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write(tmp_path, "target: myacr.azurecr.io/edge\nlines: ['1.6']\nconcurrency: 4\n")
    config = load_config(cwd=tmp_path)
    assert (config.target, config.lines, config.concurrency) == (
        "myacr.azurecr.io/edge",
        ("1.6",),
        4,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lines: ['1.x']\n", "mirror.yaml:1: lines: "),
        ("repositories: [Bad Name]\n", "mirror.yaml:1: repositories: "),
        (
            "registries:\n  r.example.com:\n    username: u\n",
            "mirror.yaml:2: registries.r.example.com: set both username and password_env",
        ),
        (
            "registries:\n  x.azurecr.io:\n    push:\n      type: service-principal\n"
            "      tenant_id: t\n      client_id: c\n",
            "set exactly one of client_secret_env and certificate_path",
        ),
        (
            "registries:\n  x.azurecr.io:\n    push:\n      type: kerberos\n",
            "mirror.yaml:3: registries.x.azurecr.io.push: Input tag 'kerberos'",
        ),
        ("policy: [1]\n", "mirror.yaml:1: policy: "),
    ],
)
def test_invalid_settings_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_identities_by_role(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "registries:\n"
            "  MyAcr.azurecr.io:\n"
            "    push: {type: service-principal, tenant_id: t, client_id: c,\n"
            "           client_secret_env: S}\n"
            "    pull: {type: basic, username: devices, password_env: P}\n"
            "  other.example.com:\n"
            "    username: mirror\n"
            "    password_env: O\n",
        )
    )
    acr = config.registry("myacr.azurecr.io")
    assert isinstance(acr.identity(push=True), ServicePrincipal)
    assert isinstance(acr.identity(push=False), BasicLogin)
    other = config.registry("other.example.com")
    assert other.identity(push=True) == other.identity(push=False)
    assert config.registry("unknown.example.com").identity(push=True) is None


def test_secrets_come_from_the_environment_when_needed() -> None:
    assert read_secret("MIRROR_X", {"MIRROR_X": "s3cret"}).get_secret_value() == "s3cret"
    assert "s3cret" not in repr(read_secret("MIRROR_X", {"MIRROR_X": "s3cret"}))
    with pytest.raises(ConfigError, match="environment variable MIRROR_Y is not set"):
        read_secret("MIRROR_Y", {})

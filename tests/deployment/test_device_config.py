"""The device's own config.toml: golden rewrites of real files, and what must not change.

Rewrite output is compared with the files in `tests/data/device-config/expected/`
(`MIRROR_REGEN_GOLDEN=1` writes them instead); a second rewrite changes nothing; the
lines that differ are the image line and the `[agent.config.auth]` lines, nothing else.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mirror.deployment.device import (
    InvalidToml,
    NoAgentImage,
    device_secrets,
    is_device_config,
    parse_device_config,
    read_device_config,
    rewrite_device_config,
)
from mirror.deployment.edits import ChangeKind
from mirror.deployment.resolvers import PinMode, Target
from mirror.deployment.rewrite import Reason, RewriteResult
from mirror.deployment.settings import RewriteSettings
from tests.deployment.helpers import REGENERATE

DATA = Path(__file__).resolve().parent.parent / "data" / "device-config"
EXPECTED = DATA / "expected"
CORPUS = sorted(DATA.glob("*.toml"))
TARGET = Target.parse("myacr.azurecr.io/edge")
DIGEST = "sha256:8c9c1b5e4bde95ab9e7e0a2e5d2a9c5e2c8a6f4d1b3e7f9a0c2d4e6f8a1b3c5d"
ALLOWED = re.compile(
    r"^(?:image = .*|\[agent\.config\.auth\]|(?:serveraddress|username|password) = .*|)\r?\n?$"
)
WITHOUT_AUTH = """\
# the agent of a test device
[agent]
name = "edgeAgent"
type = "docker"

[agent.config]
image = "mcr.microsoft.com/azureiotedge-agent:1.5.44"

[agent.env]
storageFolder = "/iotedge/storage"
"""


def rewrite(path: Path, **options: Any) -> RewriteResult:
    return rewrite_device_config(read_device_config(path), TARGET, **options)


def without_rewritten_keys(text: str) -> dict[str, Any]:
    """The parsed config without the keys a rewrite may set."""
    data = tomllib.loads(text)
    config = data.get("agent", {}).get("config", {})
    config.pop("image", None)
    config.pop("auth", None)
    return data


def changed_lines(before: str, after: str) -> list[str]:
    lines = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    return [line[2:] for line in lines if line.startswith(("- ", "+ "))]


def test_the_corpus_is_there() -> None:
    assert [p.name[:2] for p in CORPUS] == ["01", "02", "03", "04", "05"]
    assert (DATA / "SOURCES.md").exists()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_rewrite_matches_the_golden_file(path: Path) -> None:
    actual = rewrite(path).encode()
    expected = EXPECTED / f"{path.stem}.rewritten.toml"
    if REGENERATE:
        expected.write_bytes(actual)
    assert actual == expected.read_bytes()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_a_second_rewrite_changes_nothing(path: Path) -> None:
    first = rewrite(path)
    second = rewrite_device_config(parse_device_config(first.encode(), path.name), TARGET)
    assert not second.changed
    assert second.changes == ()
    assert second.encode() == first.encode()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_only_the_image_and_auth_lines_change(path: Path) -> None:
    before = path.read_bytes().decode("utf-8")
    after = rewrite(path).text
    assert all(ALLOWED.match(line) for line in changed_lines(before, after))
    assert without_rewritten_keys(after) == without_rewritten_keys(before)


def test_what_each_file_becomes() -> None:
    template, reordered, with_auth, digest, nested = (rewrite(p) for p in CORPUS)
    agent = "myacr.azurecr.io/edge/azureiotedge-agent"
    assert tomllib.loads(template.text)["agent"]["config"]["auth"] == {
        "serveraddress": "myacr.azurecr.io",
        "username": "$MIRROR_PULL_USERNAME",
        "password": "$MIRROR_PULL_PASSWORD",
    }
    assert tomllib.loads(reordered.text)["agent"]["config"]["image"] == f"{agent}:1.5"
    assert [(c.kind, c.path, c.line) for c in with_auth.changes] == [
        (ChangeKind.IMAGE, "agent.config.image", 32),
        (ChangeKind.CREDENTIAL, "agent.config.auth.serveraddress", 43),
        (ChangeKind.CREDENTIAL, "agent.config.auth.username", 41),
        (ChangeKind.CREDENTIAL, "agent.config.auth.password", 42),
    ]
    pinned = tomllib.loads(digest.text)["agent"]["config"]["image"]
    assert pinned == f"{agent}@{DIGEST}"
    assert not nested.changed
    assert [a.reason for a in nested.left_alone] == [Reason.UPSTREAM]


def test_the_added_table_keeps_the_file_line_endings() -> None:
    crlf = WITHOUT_AUTH.replace("\n", "\r\n")
    result = rewrite_device_config(parse_device_config(crlf, "config.toml"), TARGET)
    assert "\n" not in result.text.replace("\r\n", "")
    assert (
        '\r\n\r\n[agent.config.auth]\r\nserveraddress = "myacr.azurecr.io"\r\n'
        'username = "$MIRROR_PULL_USERNAME"\r\npassword = "$MIRROR_PULL_PASSWORD"\r\n\r\n'
        "[agent.env]\r\n"
    ) in result.text


def test_an_image_from_another_registry_is_left_alone() -> None:
    text = WITHOUT_AUTH.replace("mcr.microsoft.com", "docker.io/library")
    result = rewrite_device_config(parse_device_config(text, "config.toml"), TARGET)
    assert not result.changed
    assert [a.reason for a in result.left_alone] == [Reason.OTHER_REGISTRY]


def test_an_image_already_in_the_mirror_gets_the_pull_credential() -> None:
    text = WITHOUT_AUTH.replace("mcr.microsoft.com", "myacr.azurecr.io/edge")
    result = rewrite_device_config(parse_device_config(text, "config.toml"), TARGET)
    assert [c.kind for c in result.changes] == [ChangeKind.CREDENTIAL]
    assert tomllib.loads(result.text)["agent"]["config"]["auth"]["serveraddress"] == (
        "myacr.azurecr.io"
    )


def test_settings_name_the_placeholders_or_turn_the_credential_off() -> None:
    config = parse_device_config(WITHOUT_AUTH, "config.toml")
    named = RewriteSettings(username_variable="${PULL_USER}", password_variable="$PULL_TOKEN")
    auth = tomllib.loads(rewrite_device_config(config, TARGET, settings=named).text)["agent"]
    assert auth["config"]["auth"]["username"] == "${PULL_USER}"
    assert auth["config"]["auth"]["password"] == "$PULL_TOKEN"
    off = rewrite_device_config(config, TARGET, settings=RewriteSettings(credentials=False))
    assert [c.kind for c in off.changes] == [ChangeKind.IMAGE]
    assert "[agent.config.auth]" not in off.text


def test_pins_that_need_a_lookup_are_not_guessed_offline() -> None:
    text = WITHOUT_AUTH.replace("1.5.44", "1.5")
    config = parse_device_config(text, "config.toml")
    result = rewrite_device_config(config, TARGET, pin=PinMode.SPECIFIC)
    assert not result.changed
    assert [a.reason for a in result.left_alone] == [Reason.UNRESOLVED]
    specific = rewrite_device_config(
        parse_device_config(WITHOUT_AUTH, "config.toml"), TARGET, pin=PinMode.SPECIFIC
    )
    assert "myacr.azurecr.io/edge/azureiotedge-agent:1.5.44" in specific.text


def test_the_password_written_is_hidden_in_a_diff() -> None:
    config = read_device_config(CORPUS[2])
    assert device_secrets(config) == ('"QWNyUGFzc3dvcmQ="',)
    diff = rewrite_device_config(config, TARGET).diff(redact=device_secrets(config))
    assert "QWNyUGFzc3dvcmQ" not in diff
    assert '-password = "***"' in diff
    assert device_secrets(parse_device_config(WITHOUT_AUTH, "c.toml")) == ()


def test_malformed_toml_names_the_file_and_line() -> None:
    text = WITHOUT_AUTH.replace('type = "docker"', 'type = "docker')
    with pytest.raises(InvalidToml) as caught:
        parse_device_config(text, "config.toml")
    assert str(caught.value).startswith("config.toml:4: not valid TOML: ")
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidToml, match=r"^config\.toml:4: not valid TOML: .*already exists"):
        parse_device_config('[agent]\nname = "a"\n\n[agent]\n', "config.toml")


def test_a_config_without_an_agent_image_is_refused_with_its_line() -> None:
    config = parse_device_config('hostname = "x"\n\n[agent]\nname = "edgeAgent"\n', "c.toml")
    with pytest.raises(NoAgentImage, match=r"^c\.toml:3: no \[agent\.config\] image"):
        rewrite_device_config(config, TARGET)


def test_device_configs_are_told_from_manifests() -> None:
    assert is_device_config("config.toml", "")
    assert is_device_config("config", WITHOUT_AUTH)
    assert not is_device_config("deployment.json", '{"modulesContent": {}}')
    assert not is_device_config("notes.txt", 'hostname = "x"\n')
    assert not is_device_config("broken", "[agent\n")


def test_lines_are_found_for_every_way_of_writing_a_key() -> None:
    config = read_device_config(CORPUS[1])
    assert config.line("agent", "config", "image") == 33
    assert config.line("agent", "config") == 31
    assert config.line("agent", "config", "createOptions") == 35  # implicit: its first table
    assert config.line("agent", "config", "auth") == 31  # absent: the enclosing table
    inline = read_device_config(CORPUS[0])
    assert inline.line("agent", "config", "createOptions", "HostConfig") == 335


def test_a_diff_never_shows_the_devices_own_secrets(tmp_path: Path) -> None:
    from tests.support.commands import run_mirror

    config = tmp_path / "config.toml"
    config.write_text(
        '[provisioning]\nsource = "manual"\n'
        'connection_string = "HostName=h;DeviceId=d;SharedAccessKey=c2VjcmV0LWtleQ=="\n'
        "[agent.config]\n"
        'image = "mcr.microsoft.com/azureiotedge-agent:1.5"\n'
        "[provisioning.attestation]\n"
        'symmetric_key = { value = "aW5saW5lLWtleQ==" }\n'
    )
    result = run_mirror(
        "rewrite", str(config), "--registry", "myacr.azurecr.io", "--offline", "--diff",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '+image = "myacr.azurecr.io/azureiotedge-agent:1.5"' in result.stdout
    assert 'connection_string = "***"' in result.stdout  # in the diff's context, hidden
    for secret in ("c2VjcmV0LWtleQ==", "aW5saW5lLWtleQ=="):
        assert secret not in result.stdout + result.stderr

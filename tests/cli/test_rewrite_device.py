"""`mirror rewrite` and `mirror lint` on device configs (config.toml), on the command line."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import mirror.cli.lint
import mirror.cli.rewrite  # noqa: F401
from tests.cli.manifests import MANIFEST
from tests.support.commands import invoke, run_mirror

DATA = Path(__file__).resolve().parents[1] / "data" / "device-config"
TEMPLATE = DATA / "01_aziot-edge-template.toml"
WITH_AUTH = DATA / "03_complex-agent-spec-with-auth.toml"
OFFLINE = ("--registry", "myacr.azurecr.io/edge", "--offline")


def agent(path: Path) -> dict[str, object]:
    config: dict[str, object] = tomllib.loads(path.read_text())["agent"]["config"]
    return config


def test_a_config_and_a_manifest_in_one_call(workdir: Path) -> None:
    shutil.copy(TEMPLATE, workdir / "config.toml")
    result = invoke("rewrite", "config.toml", "d.json", *OFFLINE, "--in-place")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "config.toml: rewrote 1 image to myacr.azurecr.io/edge and [agent.config.auth]\n"
        "d.json: rewrote 2 images to myacr.azurecr.io/edge and the registryCredentials entry\n"
    )
    assert agent(workdir / "config.toml")["image"] == (
        "myacr.azurecr.io/edge/azureiotedge-agent:1.6"
    )
    expected = (DATA / "expected" / "01_aziot-edge-template.rewritten.toml").read_bytes()
    assert (workdir / "config.toml").read_bytes() == expected
    again = invoke("rewrite", "config.toml", "d.json", *OFFLINE, "--check")
    assert again.exit_code == 0, again.output


def test_standard_output_check_and_diff(workdir: Path) -> None:
    shutil.copy(WITH_AUTH, workdir / "config.toml")
    printed = invoke("rewrite", "config.toml", *OFFLINE)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == (DATA / "expected" / f"{WITH_AUTH.stem}.rewritten.toml").read_text()
    check = invoke("rewrite", "config.toml", *OFFLINE, "--check")
    assert check.exit_code == 1
    assert check.stderr == (
        "config.toml: would rewrite 1 image to myacr.azurecr.io/edge and [agent.config.auth]\n"
    )
    diff = invoke("rewrite", "config.toml", *OFFLINE, "--diff")
    assert diff.exit_code == 0
    assert '\n-password = "***"\n' in diff.stdout
    assert '\n+password = "$MIRROR_PULL_PASSWORD"\n' in diff.stdout
    assert "QWNyUGFzc3dvcmQ" not in diff.output
    assert (workdir / "config.toml").read_bytes() == WITH_AUTH.read_bytes()


def test_a_toml_config_without_the_toml_name_is_recognised(workdir: Path) -> None:
    shutil.copy(TEMPLATE, workdir / "config")
    result = invoke("rewrite", "config", *OFFLINE, "-o", "out.toml")
    assert result.exit_code == 0, result.output
    assert agent(workdir / "out.toml")["auth"] == {
        "serveraddress": "myacr.azurecr.io",
        "username": "$MIRROR_PULL_USERNAME",
        "password": "$MIRROR_PULL_PASSWORD",
    }


def test_malformed_toml_is_one_line_and_the_other_file_is_rewritten(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        '[agent]\nname = "edgeAgent"\n\n[agent.config]\nimage = 5 5\n'
    )
    shutil.copy(TEMPLATE, tmp_path / "config.toml")
    (tmp_path / "d.json").write_text(MANIFEST)
    files = ("bad.toml", "config.toml", "d.json")
    result = run_mirror("rewrite", *files, *OFFLINE, "--in-place", cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("mirror: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("mirror: error: bad.toml:5: not valid TOML: ")
    assert "Traceback" not in result.stderr
    assert "config.toml: rewrote 1 image" in result.stderr
    assert "d.json: rewrote 2 images" in result.stderr
    assert agent(tmp_path / "config.toml")["image"] == (
        "myacr.azurecr.io/edge/azureiotedge-agent:1.6"
    )


def test_a_pin_that_needs_the_registry_fails_offline_and_writes_nothing(workdir: Path) -> None:
    shutil.copy(TEMPLATE, workdir / "config.toml")
    result = invoke("rewrite", "config.toml", *OFFLINE, "--pin", "digest", "--in-place")
    assert result.exit_code == 1
    assert "config.toml:334: no index digest is known for" in result.stderr
    assert "config.toml: not rewritten" in result.stderr
    assert (workdir / "config.toml").read_bytes() == TEMPLATE.read_bytes()


def test_lint_a_config_and_daemon_json(workdir: Path) -> None:
    shutil.copy(TEMPLATE, workdir / "config.toml")
    (workdir / "daemon.json").write_text('{\n  "log-driver": "json-file"\n}\n')
    result = invoke("lint", "config.toml", "--daemon-json", "daemon.json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("daemon.json:2:3: warning: by default every container logs")
    assert lines[1].startswith("config.toml:334:1: warning: the device pulls its first edgeAgent")
    assert lines[-1] == "0 errors, 4 warnings, 0 infos"
    production = invoke("lint", "config.toml", "--profile", "production", "--format", "json")
    assert production.exit_code == 1
    only_daemon = invoke("lint", "--daemon-json", "daemon.json")
    assert only_daemon.exit_code == 0
    nothing = invoke("lint")
    assert nothing.exit_code == 2

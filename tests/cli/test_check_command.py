"""`mirror rewrite --print-check-command`: the `iotedge check` line for a device that
pulls the diagnostics image from the mirror."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mirror.cli.rewrite  # noqa: F401
from tests.support.commands import invoke, one_line_error, run_mirror
from tests.support.images import Seeder
from tests.support.registry import Registry

DATA = Path(__file__).resolve().parents[1] / "data" / "device-config"
COMMAND = "iotedge check --diagnostics-image-name"


def check_command(*args: str) -> str:
    result = invoke("rewrite", "--print-check-command", "--offline", *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def test_without_files_the_newest_stable_release(workdir: Path) -> None:
    assert check_command("--registry", "myacr.azurecr.io/edge") == (
        f"{COMMAND} myacr.azurecr.io/edge/azureiotedge-diagnostics:1.6.0\n"
    )


def test_the_daemon_version_given(workdir: Path) -> None:
    assert check_command("--registry", "myacr.azurecr.io", "--daemon-version", "1.5.21") == (
        f"{COMMAND} myacr.azurecr.io/azureiotedge-diagnostics:1.5.21\n"
    )


def test_the_registry_from_the_config(workdir: Path) -> None:
    (workdir / "mirror.yaml").write_text("target: https://myacr.azurecr.io/mirror\n")
    assert check_command() == f"{COMMAND} myacr.azurecr.io/mirror/azureiotedge-diagnostics:1.6.0\n"


@pytest.mark.parametrize(
    ("name", "version"),
    [("02_tables-out-of-order.toml", "1.5.21"), ("01_aziot-edge-template.toml", "1.6.0")],
)
def test_the_agent_line_of_a_config_picks_the_release(
    workdir: Path, name: str, version: str
) -> None:
    shutil.copy(DATA / name, workdir / "config.toml")
    assert check_command("config.toml", "--registry", "r.example.com") == (
        f"{COMMAND} r.example.com/azureiotedge-diagnostics:{version}\n"
    )
    assert (workdir / "config.toml").read_bytes() == (DATA / name).read_bytes()


def test_a_digest_pinned_agent_falls_back_to_the_newest_stable(workdir: Path) -> None:
    shutil.copy(DATA / "04_digest-pinned.toml", workdir / "config.toml")
    assert check_command("config.toml", "--registry", "r.example.com").endswith(":1.6.0\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--daemon-version", "1.5"), "--daemon-version '1.5': give the daemon's version as X.Y.Z"),
        (("03.toml",), "the release feed lists no IoT Edge release of the 1.0 line"),
        (("01.toml", "02.toml"), "the device configs run different runtime lines (1.5, 1.6)"),
        (("d.json",), "d.json: not a device config"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    for number, source in (("01", "01_aziot-edge-template"), ("02", "02_tables-out-of-order")):
        shutil.copy(DATA / f"{source}.toml", tmp_path / f"{number}.toml")
    shutil.copy(DATA / "03_complex-agent-spec-with-auth.toml", tmp_path / "03.toml")
    (tmp_path / "d.json").write_text("{}")
    result = run_mirror(
        "rewrite",
        "--print-check-command",
        "--offline",
        "--registry",
        "r.example.com",
        *args,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert message in one_line_error(result)
    assert result.stdout == ""


def test_the_daemon_version_needs_the_print_option(workdir: Path) -> None:
    result = invoke(
        "rewrite", "d.json", "--offline", "--registry", "r.io", "--daemon-version", "1.5.21"
    )
    assert result.exit_code == 2
    assert "--daemon-version goes with --print-check-command" in result.output


@pytest.mark.registry
def test_online_the_image_must_be_in_the_mirror(
    target: Registry, target_seeder: Seeder, tmp_path: Path
) -> None:
    target_seeder.push_release("edge/azureiotedge-diagnostics", "1.5.21")
    registry = ("--registry", f"{target.url}/edge", "--print-check-command")
    found = run_mirror("rewrite", *registry, "--daemon-version", "1.5.21", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout == (f"{COMMAND} {target.address}/edge/azureiotedge-diagnostics:1.5.21\n")
    missing = run_mirror("rewrite", *registry, cwd=tmp_path)
    assert missing.returncode == 1
    error = one_line_error(missing)
    assert f"{target.address}/edge/azureiotedge-diagnostics:1.6.0" in error
    assert "mirror sync --repo azureiotedge-diagnostics" in error
    assert missing.stdout == ""


@pytest.mark.registry
def test_a_config_pinned_by_digest_from_the_mirror(
    target: Registry, target_seeder: Seeder, tmp_path: Path
) -> None:
    target_seeder.push_release("edge/azureiotedge-agent", "1.6.1")
    target_seeder.tag("edge/azureiotedge-agent", "1.6.1", "1.6")
    digest = target_seeder.digest_of("edge/azureiotedge-agent", "1.6")
    shutil.copy(DATA / "01_aziot-edge-template.toml", tmp_path / "config.toml")
    registry = ("--registry", f"{target.url}/edge")
    done = run_mirror(
        "rewrite", "config.toml", *registry, "--pin", "digest", "--in-place", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "config.toml").read_text()
    assert f'image = "{target.address}/edge/azureiotedge-agent@{digest}"\n' in text
    assert f'serveraddress = "{target.address}"\n' in text
    again = run_mirror(
        "rewrite", "config.toml", *registry, "--pin", "digest", "--check", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr

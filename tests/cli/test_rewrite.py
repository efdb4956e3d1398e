"""`mirror rewrite` on the command line, without a registry.

Most cases run the typer app in-process; a few run `python -m mirror` to see what a
user sees: one error line per failed file (naming it) and the exit code.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

import mirror.cli.lint
import mirror.cli.rewrite  # noqa: F401
from mirror.errors import ConfigError
from tests.cli.manifests import AGENT, HUB, MANIFEST
from tests.deployment.helpers import deployment, dumps
from tests.support.commands import invoke, run_mirror
from tests.support.registry import free_port


def images(path: Path) -> dict[str, str]:
    desired = json.loads(path.read_text())["modulesContent"]["$edgeAgent"]["properties.desired"]
    found = {name: m["settings"]["image"] for name, m in desired["systemModules"].items()}
    found.update({name: m["settings"]["image"] for name, m in desired["modules"].items()})
    return found


def credentials(path: Path) -> dict[str, Any]:
    desired = json.loads(path.read_text())["modulesContent"]["$edgeAgent"]["properties.desired"]
    entries: dict[str, Any] = desired["runtime"]["settings"]["registryCredentials"]
    return entries


# -- rewrite ---------------------------------------------------------------------------


def test_rewrite_prints_the_manifest_and_leaves_the_file(workdir: Path) -> None:
    result = invoke("rewrite", "d.json", "--registry", "myacr.azurecr.io/edge", "--offline")
    assert result.exit_code == 0, result.output
    (workdir / "out.json").write_text(result.stdout)
    assert images(workdir / "out.json") == {
        "edgeAgent": "myacr.azurecr.io/edge/azureiotedge-agent:1.5",
        "edgeHub": "myacr.azurecr.io/edge/azureiotedge-hub:1.5",
        "nginx": "docker.io/library/nginx:1.27",
    }
    assert credentials(workdir / "out.json") == {
        "myacr": {
            "username": "$MIRROR_PULL_USERNAME",
            "password": "$MIRROR_PULL_PASSWORD",
            "address": "myacr.azurecr.io",
        }
    }
    assert (workdir / "d.json").read_text() == MANIFEST
    assert result.stderr == ""


def test_rewrite_in_place_is_idempotent_and_check_tells_ci(workdir: Path) -> None:
    common = ("d.json", "--registry", "myacr.azurecr.io", "--offline")
    check = invoke("rewrite", *common, "--check")
    assert check.exit_code == 1
    assert check.stdout == ""
    assert check.stderr == (
        "d.json: would rewrite 2 images to myacr.azurecr.io and the registryCredentials entry\n"
    )
    assert (workdir / "d.json").read_text() == MANIFEST

    first = invoke("rewrite", *common, "--in-place")
    assert first.exit_code == 0, first.output
    assert first.stderr == (
        "d.json: rewrote 2 images to myacr.azurecr.io and the registryCredentials entry\n"
    )
    rewritten = (workdir / "d.json").read_bytes()
    assert images(workdir / "d.json")["edgeAgent"] == "myacr.azurecr.io/azureiotedge-agent:1.5"

    again = invoke("rewrite", *common, "--in-place")
    assert again.exit_code == 0
    assert again.stderr == "d.json: unchanged\n"
    assert (workdir / "d.json").read_bytes() == rewritten
    assert invoke("rewrite", *common, "--check").exit_code == 0


def test_in_place_keeps_the_file_mode_and_output_writes_another_file(workdir: Path) -> None:
    (workdir / "d.json").chmod(0o640)
    result = invoke("rewrite", "d.json", "--registry", "r.example.com", "--offline", "--in-place")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((workdir / "d.json").stat().st_mode) == 0o640
    assert [p.name for p in workdir.iterdir()] == ["d.json"]  # no temporary left behind

    (workdir / "e.json").write_text(MANIFEST)
    result = invoke("rewrite", "e.json", "--registry", "r.example.com", "--offline", "-o", "f.json")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert (workdir / "e.json").read_text() == MANIFEST
    assert (workdir / "f.json").read_bytes() == (workdir / "d.json").read_bytes()
    assert result.stderr == (
        "e.json: rewrote 2 images to r.example.com and the registryCredentials entry;"
        " written to f.json\n"
    )
    result = invoke("rewrite", "d.json", "--registry", "r.example.com", "--offline", "-o", "g.json")
    assert result.stderr == "d.json: unchanged; written to g.json\n"
    assert (workdir / "g.json").read_bytes() == (workdir / "d.json").read_bytes()


def test_diff_shows_the_change_and_hides_passwords(workdir: Path) -> None:
    text = deployment(
        {"edgeAgent": AGENT, "edgeHub": HUB},
        credentials={
            "old": {"username": "admin", "password": "s3cret", "address": "myacr.azurecr.io"},
            "other": {"username": "u", "password": "hunter2", "address": "other.example.com"},
        },
    )
    (workdir / "d.json").write_text(text)
    result = invoke("rewrite", "d.json", "--registry", "myacr.azurecr.io", "--offline", "--diff")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("--- d.json\n+++ d.json\n@@ ")
    assert '+              "image": "myacr.azurecr.io/azureiotedge-agent:1.5"' in result.stdout
    assert '-                "password": "***",' in result.stdout
    assert "s3cret" not in result.output
    assert "hunter2" not in result.output
    assert (workdir / "d.json").read_text() == text


def test_settings_from_the_config_file_and_the_command_line(workdir: Path) -> None:
    (workdir / "mirror.yaml").write_text(
        "target: https://myacr.azurecr.io/mirror\n"
        "rewrite:\n"
        "  sources: ['mcr.microsoft.com/*', 'docker.io/library/*']\n"
        "  credential_name: edge-mirror\n"
        "  username_variable: ${PULL_USER}\n"
        "  password_variable: $PULL_TOKEN\n"
    )
    result = invoke("rewrite", "d.json", "--offline", "-o", "out.json")
    assert result.exit_code == 0, result.output
    assert images(workdir / "out.json")["nginx"] == "myacr.azurecr.io/mirror/library/nginx:1.27"
    assert credentials(workdir / "out.json") == {
        "edge-mirror": {
            "username": "${PULL_USER}",
            "password": "$PULL_TOKEN",
            "address": "myacr.azurecr.io",
        }
    }
    narrow = invoke(
        "rewrite",
        "d.json",
        "--offline",
        "--mirrored",
        "mcr.microsoft.com/azureiotedge-hub",
        "--no-credentials",
        "-o",
        "narrow.json",
    )
    assert narrow.exit_code == 0, narrow.output
    assert images(workdir / "narrow.json") == {
        "edgeAgent": AGENT,
        "edgeHub": "myacr.azurecr.io/mirror/azureiotedge-hub:1.5",
        "nginx": "docker.io/library/nginx:1.27",
    }
    assert credentials(workdir / "narrow.json") == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", "amd64"], "rewrite.platforms: 'amd64' is not a platform"),
        (["--mirrored", "nginx"], "write patterns as registry/repository"),
        (["--registry", "myacr"], "not a registry host"),
        (["--registry", "http://myacr.azurecr.io"], "refusing plain http"),
        ([], "is an OCI layout directory, not a registry"),
    ],
)
def test_bad_settings_are_config_errors(workdir: Path, args: list[str], message: str) -> None:
    result = invoke("rewrite", "d.json", "--offline", *args)
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)
    assert (workdir / "d.json").read_text() == MANIFEST


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["d.json", "e.json"], "2 files given: standard output and --output take one"),
        (["d.json", "e.json", "-o", "x.json", "--diff"], "standard output and --output take one"),
        (["d.json", "--in-place", "-o", "x.json"], "--in-place and --output exclude each other"),
        (["d.json", "--check", "--in-place"], "--check writes nothing"),
    ],
)
def test_conflicting_options_are_usage_errors(workdir: Path, args: list[str], message: str) -> None:
    (workdir / "e.json").write_text(MANIFEST)
    result = invoke("rewrite", *args, "--registry", "r.example.com", "--offline")
    assert result.exit_code == 2
    assert result.stderr.startswith("mirror: error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_offline_pins_need_a_ledger_record(workdir: Path) -> None:
    """Offline, `--pin digest|specific` answers from the ledger; it has no record yet."""
    offline = ("--registry", "r.example.com", "--offline")
    result = invoke("rewrite", "d.json", *offline, "--pin", "digest", "--in-place")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    for line, image in zip(lines, ("17: ...-agent:1.5", "23: ...-hub:1.5"), strict=False):
        line_number, name = image.split(": ...")
        assert line.startswith(f"mirror: error: d.json:{line_number}: no index digest is known")
        assert f"mcr.microsoft.com/azureiotedge{name} in the ledger " in line
    assert lines[2] == "mirror: d.json: not rewritten"
    assert (workdir / "d.json").read_text() == MANIFEST
    pinned = deployment({"edgeAgent": AGENT + ".44", "edgeHub": HUB + ".44"})
    (workdir / "p.json").write_text(pinned)
    result = invoke("rewrite", "p.json", *offline, "--pin", "specific")
    assert result.exit_code == 0, result.output
    assert "r.example.com/azureiotedge-agent:1.5.44" in result.stdout


def test_placeholder_tags_are_rewritten_with_a_note(workdir: Path) -> None:
    (workdir / "t.json").write_text(
        deployment({"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:${V}", "edgeHub": HUB})
    )
    result = invoke("rewrite", "t.json", "--registry", "r.example.com", "--offline", "--check")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "t.json:16: note: the tag is a placeholder: check the mirror once it is set"
    )


def test_broken_files_get_one_line_each_and_the_others_are_rewritten(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"modulesContent": {,}}\n')
    (tmp_path / "other.json").write_text('{"name": "not a deployment"}\n')
    (tmp_path / "dir.json").mkdir()
    signed = json.loads(MANIFEST)
    signed["modulesContent"]["$edgeAgent"]["properties.desired"]["integrity"] = {
        "header": {},
        "signature": {"bytes": "x"},
    }
    (tmp_path / "signed.json").write_text(dumps(signed))
    (tmp_path / "good.json").write_text(MANIFEST)
    files = ["bad.json", "other.json", "dir.json", "missing.json", "signed.json", "good.json"]
    done = run_mirror(
        "rewrite", *files, "--registry", "myacr.azurecr.io", "--offline", "--in-place", cwd=tmp_path
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 6, done.stderr
    assert lines[0].startswith("mirror: error: bad.json:1:21: not valid JSON: ")
    assert lines[1].startswith("mirror: error: other.json: is not a deployment manifest")
    assert lines[2] == "mirror: error: dir.json: cannot read: Is a directory"
    assert lines[3] == "mirror: error: missing.json: cannot read: No such file or directory"
    assert lines[4].startswith("mirror: error: signed.json:")
    assert "refusing to rewrite a signed manifest" in lines[4]
    assert lines[5].startswith("good.json: rewrote 2 images")
    assert images(tmp_path / "good.json")["edgeHub"] == "myacr.azurecr.io/azureiotedge-hub:1.5"
    assert done.stdout == ""


def test_a_usage_error_is_one_line_from_the_command(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(MANIFEST)
    done = run_mirror("rewrite", "d.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("mirror: error: the target oci:./mirror-store is an OCI layout")
    assert done.stderr.count("\n") == 1


# -- lint ------------------------------------------------------------------------------


def test_an_unreachable_registry_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(MANIFEST)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    registry = ("--registry", f"http://{address}")
    done = run_mirror("rewrite", "d.json", *registry, "--in-place", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"mirror: error: cannot reach http://{address}: ")
    assert done.stderr.count("\n") == 1
    assert (tmp_path / "d.json").read_text() == MANIFEST

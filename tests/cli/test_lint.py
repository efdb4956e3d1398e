"""`mirror lint` on the command line.

Most cases run the typer app in-process; a few run `python -m mirror` to see what a
user sees: one error line per failed file (naming it) and the exit code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mirror.cli.lint
import mirror.cli.rewrite  # noqa: F401
from mirror.errors import ConfigError
from tests.cli.manifests import AGENT
from tests.deployment.helpers import dumps
from tests.deployment.lint_cases import CLEAN, FILTER, vary
from tests.support.commands import invoke, run_mirror


def credentials(path: Path) -> dict[str, Any]:
    desired = json.loads(path.read_text())["modulesContent"]["$edgeAgent"]["properties.desired"]
    entries: dict[str, Any] = desired["runtime"]["settings"]["registryCredentials"]
    return entries


# -- rewrite ---------------------------------------------------------------------------


# -- lint ------------------------------------------------------------------------------


def lint_file(directory: Path, document: dict[str, Any], name: str = "m.json") -> str:
    (directory / name).write_text(dumps(document))
    return name


PUBLIC_ROLLING = vary(
    ("modulesContent/$edgeAgent/properties.desired/systemModules/edgeAgent/settings/image", AGENT)
)


def test_lint_clean_manifest_exits_0(workdir: Path) -> None:
    result = invoke("lint", lint_file(workdir, CLEAN))
    assert result.exit_code == 0, result.output
    assert result.stdout == "0 errors, 0 warnings, 0 infos\n"


def test_lint_warnings_pass_unless_the_production_profile(workdir: Path) -> None:
    name = lint_file(workdir, PUBLIC_ROLLING)
    result = invoke("lint", name)
    assert result.exit_code == 0
    assert "warning: " in result.stdout
    assert "[rolling-runtime-tag]" in result.stdout
    assert "[public-runtime-registry]" in result.stdout
    production = invoke("lint", name, "--profile", "production")
    assert production.exit_code == 1
    assert production.stdout.count("m.json:23:15: error: ") == 2
    assert production.stdout.endswith("2 errors, 0 warnings, 0 infos\n")


def test_lint_rules_are_regraded_and_disabled_per_run(workdir: Path) -> None:
    name = lint_file(workdir, PUBLIC_ROLLING)
    result = invoke(
        "lint",
        name,
        "--profile",
        "production",
        "--severity",
        "rolling-runtime-tag=info",
        "--disable",
        "public-runtime-registry",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)
    assert [(f["rule"], f["severity"]) for f in findings] == [("rolling-runtime-tag", "info")]


def test_lint_settings_from_the_config_and_enable(workdir: Path) -> None:
    (workdir / "mirror.yaml").write_text(
        "target: myacr.azurecr.io/edge\n"
        "lint:\n"
        "  profile: production\n"
        "  disabled: [public-runtime-registry, rolling-runtime-tag]\n"
    )
    name = lint_file(workdir, PUBLIC_ROLLING)
    assert invoke("lint", name).exit_code == 0
    result = invoke("lint", name, "--enable", "public-runtime-registry")
    assert result.exit_code == 1
    (line,) = result.stdout.splitlines()[:-1]
    assert line.endswith(
        "serve it from myacr.azurecr.io/edge (mirror sync, then mirror rewrite)"
        " [public-runtime-registry] (modulesContent.$edgeAgent.properties.desired"
        ".systemModules.edgeAgent.settings.image)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--severity", "mutable-tag"], "--severity 'mutable-tag': write RULE=LEVEL"),
        (["--enable", "nope"], "--enable nope: unknown lint rule"),
    ],
)
def test_lint_usage_errors(workdir: Path, args: list[str], message: str) -> None:
    result = invoke("lint", lint_file(workdir, CLEAN), *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mirror: error: {message}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disable", "nope"], "lint.disabled: unknown lint rule 'nope'"),
        (["--severity", "mutable-tag=fatal"], "lint.severity: Input should be"),
    ],
)
def test_lint_bad_rule_settings_are_config_errors(
    workdir: Path, args: list[str], message: str
) -> None:
    result = invoke("lint", lint_file(workdir, CLEAN), *args)
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith(message)


def test_lint_sarif_to_a_file(workdir: Path) -> None:
    name = lint_file(workdir, vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:latest")))
    (workdir / "broken.json").write_text("[")
    result = invoke("lint", name, "broken.json", "--format", "sarif", "-o", "lint.sarif")
    assert result.exit_code == 1  # a file could not be linted
    assert result.stdout == ""
    assert result.stderr.startswith("mirror: error: broken.json:1:2: not valid JSON")
    log = json.loads((workdir / "lint.sarif").read_text())
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert [r["ruleId"] for r in run["results"]] == ["mutable-tag"]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "m.json"
    }
    assert run["invocations"][0]["executionSuccessful"] is False


def test_lint_template_option(workdir: Path) -> None:
    placeholder = vary((f"{FILTER}/settings/image", "${MODULES.filter}"))
    name = lint_file(workdir, placeholder)
    deployable = invoke("lint", name, "--deployable", "--format", "json")
    assert [f["rule"] for f in json.loads(deployable.stdout)] == ["unresolved-placeholder"]
    assert deployable.exit_code == 1
    template = invoke("lint", name, "--template", "--format", "json")
    assert "unresolved-placeholder" not in template.stdout
    assert template.exit_code == 0, template.output


def test_lint_goes_on_after_broken_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{\n  'x': 1\n}\n")
    (tmp_path / "other.json").write_text("[]")
    good = lint_file(tmp_path, CLEAN)
    done = run_mirror("lint", "bad.json", "other.json", "missing.json", good, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "bad.json:2:3: not valid JSON: expected a quoted key",
        "other.json: is not a deployment manifest: the top level is not a JSON object",
        "missing.json: cannot read: No such file or directory",
        "0 errors, 0 warnings, 0 infos; 3 files not linted",
    ]
    assert done.stderr == ""
    as_json = run_mirror("lint", "bad.json", good, "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == []
    assert as_json.stderr.splitlines() == [
        "mirror: error: bad.json:2:3: not valid JSON: expected a quoted key"
    ]

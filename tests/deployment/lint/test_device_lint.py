"""`mirror lint` on device configs (config.toml) and Moby's daemon.json.

Findings on the corpus of `tests/data/device-config` are compared with the files in
`expected/` (`MIRROR_REGEN_GOLDEN=1` writes them instead); the cases below show each
rule firing and staying quiet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.deployment.device import parse_device_config, read_device_config
from mirror.deployment.document import parse_document
from mirror.deployment.lint.engine import lint_daemon_json, lint_device_config, lint_paths
from mirror.deployment.lint.finding import Finding
from mirror.deployment.lint.output import render
from mirror.deployment.settings import LintSettings
from tests.deployment.helpers import REGENERATE

DATA = Path(__file__).resolve().parents[2] / "data" / "device-config"
CORPUS = sorted(DATA.glob("*.toml"))
MIRRORED = LintSettings(private_registry="myacr.azurecr.io/edge")
PINNED = """\
[agent]
name = "edgeAgent"
type = "docker"

[agent.config]
image = "myacr.azurecr.io/edge/azureiotedge-agent:1.5.44"

[agent.config.auth]
serveraddress = "myacr.azurecr.io"
username = "$MIRROR_PULL_USERNAME"
password = "$MIRROR_PULL_PASSWORD"

[agent.config.createOptions.HostConfig.LogConfig]
Type = "local"
Config = { max-size = "10m", max-file = "3" }
"""


def lint(text: str, settings: LintSettings = MIRRORED) -> list[tuple[str, int, str]]:
    findings = lint_device_config(parse_device_config(text, "config.toml"), settings)
    return [(f.rule, f.line, f.severity.value) for f in findings]


def messages(text: str, settings: LintSettings = MIRRORED) -> list[str]:
    return [f.message for f in lint_device_config(parse_device_config(text, "c.toml"), settings)]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_lint_matches_the_golden_file(path: Path) -> None:
    findings = lint_device_config(read_device_config(path), MIRRORED)
    found = [{**f.as_dict(), "file": path.name} for f in findings]  # wherever the checkout is
    actual = (json.dumps(found, indent=2) + "\n").encode()
    expected = DATA / "expected" / f"{path.stem}.lint.json"
    if REGENERATE:
        expected.write_bytes(actual)
    assert actual == expected.read_bytes()


def test_a_pinned_agent_from_the_mirror_with_auth_and_log_limits_is_clean() -> None:
    assert lint(PINNED) == []


def test_a_public_rolling_agent() -> None:
    text = PINNED.replace("myacr.azurecr.io/edge/azureiotedge-agent:1.5.44", "x")
    text = text.replace('"x"', '"mcr.microsoft.com/azureiotedge-agent:1.5"')
    assert lint(text) == [
        ("public-runtime-registry", 6, "warning"),
        ("rolling-runtime-tag", 6, "warning"),
        ("registry-credentials", 9, "info"),
    ]
    assert "serve it from myacr.azurecr.io/edge" in messages(text)[0]
    production = LintSettings(profile="production", private_registry="myacr.azurecr.io")
    assert [severity for _, _, severity in lint(text, production)] == ["error", "error", "info"]


def test_a_private_registry_needs_auth_for_it() -> None:
    no_auth = PINNED.replace(
        '[agent.config.auth]\nserveraddress = "myacr.azurecr.io"\n'
        'username = "$MIRROR_PULL_USERNAME"\npassword = "$MIRROR_PULL_PASSWORD"\n\n',
        "",
    )
    assert lint(no_auth) == [("registry-credentials", 5, "error")]
    assert "[agent.config.auth] is missing" in messages(no_auth)[0]
    elsewhere = PINNED.replace('serveraddress = "myacr.azurecr.io"', 'serveraddress = "b.io"')
    assert lint(elsewhere) == [("registry-credentials", 9, "error")]
    assert 'set serveraddress = "myacr.azurecr.io"' in messages(elsewhere)[0]


def test_admin_and_push_identities_on_devices() -> None:
    admin = PINNED.replace("$MIRROR_PULL_USERNAME", "myacr")
    assert lint(admin) == [("credential-hygiene", 10, "warning")]
    pusher = PINNED.replace("$MIRROR_PULL_USERNAME", "mirror-push")
    assert lint(pusher, LintSettings(push_username="mirror-push")) == [
        ("credential-hygiene", 10, "warning")
    ]


def test_create_options_without_log_limits() -> None:
    text = PINNED.replace('Config = { max-size = "10m", max-file = "3" }\n', "")
    assert lint(text) == [("log-limits", 13, "warning")]
    assert "without max-size and max-file" in messages(text)[0]
    assert lint(text, MIRRORED.model_copy(update={"daemon_log_policy": True})) == []


def test_old_debug_and_broken_images() -> None:
    old = PINNED.replace("1.5.44", "1.1.0")
    assert lint(old) == [("unsupported-runtime", 6, "warning")]
    debug = PINNED.replace("1.5.44", "1.5.44-linux-amd64.debug")
    assert ("debug-image", 6, "error") in lint(debug)
    broken = PINNED.replace("myacr.azurecr.io/edge/azureiotedge-agent:1.5.44", "a:b:c")
    assert lint(broken) == [("image-reference", 6, "error")]
    nested = PINNED.replace("myacr.azurecr.io/edge", "$upstream:443")
    assert lint(nested) == []


def test_no_agent_section_means_the_default_agent_from_mcr() -> None:
    assert lint('hostname = "x"\n\n[provisioning]\nsource = "manual"\n') == [
        ("public-runtime-registry", 1, "warning")
    ]
    assert lint('[agent]\nname = "edgeAgent"\n') == [("public-runtime-registry", 1, "warning")]


def test_disabled_and_regraded_rules() -> None:
    text = PINNED.replace("1.5.44", "1.5")
    assert lint(text) == [("rolling-runtime-tag", 6, "warning")]
    assert lint(text, MIRRORED.with_overrides(disable=["rolling-runtime-tag"])) == []
    assert lint(text, MIRRORED.with_overrides(severity={"rolling-runtime-tag": "info"})) == [
        ("rolling-runtime-tag", 6, "info")
    ]


@pytest.mark.parametrize(
    ("daemon", "finding"),
    [
        ("{}", ("log-limits", 1, 1)),
        ('{\n  "log-driver": "json-file"\n}\n', ("log-limits", 2, 3)),
        (
            '{\n  "log-driver": "local",\n  "log-opts": {"max-size": "10m"}\n}\n',
            ("log-limits", 3, 3),
        ),
        ('{"log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}}', None),
        ('{"log-opts": {"max-size": "10m", "max-file": "3"}}', None),
        ('{"log-driver": "journald"}', None),
    ],
)
def test_daemon_json_log_defaults(daemon: str, finding: tuple[str, int, int] | None) -> None:
    findings = lint_daemon_json(parse_document(daemon, "daemon.json"))
    assert [(f.rule, f.line, f.column) for f in findings] == ([finding] if finding else [])


def test_a_daemon_wide_policy_quiets_per_container_limits(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CORPUS[0].read_text())
    (tmp_path / "good.json").write_text(
        '{"log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}}'
    )
    (tmp_path / "bad.json").write_text('{"log-driver": "json-file"}')
    config = tmp_path / "config.toml"
    quiet = lint_paths([config], MIRRORED, daemon_json=tmp_path / "good.json")
    assert "log-limits" not in {f.rule for f in quiet.findings}
    loud = lint_paths([config], MIRRORED, daemon_json=tmp_path / "bad.json")
    assert [(Path(f.file).name, f.rule) for f in loud.findings if f.rule == "log-limits"] == [
        ("bad.json", "log-limits"),
        ("config.toml", "log-limits"),
    ]
    assert loud.files == 2


def test_findings_render_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(PINNED.replace("1.5.44", "1.5"))
    report = lint_paths([path], MIRRORED)
    text = render(report.findings, "text")
    assert text.startswith(f"{path}:6:1: warning: the bootstrap edgeAgent is on the rolling tag")
    assert "[rolling-runtime-tag] (agent.config.image)" in text
    (finding,) = json.loads(render(report.findings, "json"))
    assert (finding["file"], finding["line"], finding["path"]) == (
        str(path),
        6,
        "agent.config.image",
    )
    sarif = json.loads(render(report.findings, "sarif"))
    region = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 6, "startColumn": 1}


def test_a_malformed_config_is_one_error_and_the_others_are_linted(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[agent]\nname = "edgeAgent\n')
    (tmp_path / "good.toml").write_text(PINNED.replace("1.5.44", "1.5"))
    report = lint_paths([tmp_path / "bad.toml", tmp_path / "good.toml"], MIRRORED)
    (error,) = report.errors
    assert str(error).startswith(f"{tmp_path / 'bad.toml'}:2: not valid TOML: ")
    assert [f.rule for f in report.findings] == ["rolling-runtime-tag"]
    assert isinstance(report.findings[0], Finding)


def test_no_create_options_at_all_has_no_log_limits_either() -> None:
    text = '[agent.config]\nimage = "myacr.azurecr.io/azureiotedge-agent:1.5.44"\n'
    assert [(rule, line) for rule, line, _ in lint(text) if rule == "log-limits"] == [
        ("log-limits", 1)
    ]


def test_tables_are_found_on_their_header_line_with_crlf_endings() -> None:
    text = '# c\r\n[agent]\r\nname = "edgeAgent"\r\n\r\n[agent.config]\r\nimage = "x:1.5.44"\r\n'
    config = parse_device_config(text, "config.toml")
    assert (config.line("agent"), config.line("agent", "config")) == (2, 5)

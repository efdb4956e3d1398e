"""The rewrite and lint settings: defaults, validation, per-run overrides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mirror.deployment.settings import LintSettings, RewriteSettings, matches_any


def test_rewrite_defaults() -> None:
    settings = RewriteSettings()
    assert settings.sources == ["mcr.microsoft.com/azureiotedge-*"]
    assert settings.username_variable == "$MIRROR_PULL_USERNAME"
    assert settings.password_variable == "$MIRROR_PULL_PASSWORD"
    assert settings.is_source("mcr.microsoft.com/azureiotedge-agent")
    assert not settings.is_source("mcr.microsoft.com/oss/v2/docker/registry")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("username_variable", "hunter2", "is not a placeholder"),
        ("password_variable", "$not valid", "is not a placeholder"),
        ("credential_name", "my.acr", "a credential name has no"),
        ("platforms", [], "at least one platform"),
        ("platforms", ["amd64"], "is not a platform"),
        ("platforms", ["Linux/AMD64"], "is not a platform"),
        ("target_prefix", "edge", "Extra inputs"),
        ("sources", [], "at least one source"),
        ("sources", ["azureiotedge-*"], "registry/repository"),
        ("unknown", 1, "Extra inputs"),
    ],
)
def test_rewrite_validation(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        RewriteSettings.model_validate({field: value})


def test_rewrite_accepts_braced_variables() -> None:
    settings = RewriteSettings(password_variable="${PULL_PASSWORD}")
    assert settings.password_variable == "${PULL_PASSWORD}"


def test_rewrite_platforms_default_to_the_runtime_images_and_drop_repeats() -> None:
    assert RewriteSettings().platforms == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    settings = RewriteSettings(platforms=["linux/amd64", "linux/arm64/v8", "linux/amd64"])
    assert settings.platforms == ["linux/amd64", "linux/arm64/v8"]


@pytest.mark.parametrize(
    ("name", "patterns", "matched"),
    [
        ("mcr.microsoft.com/oss/v2/docker/registry", ["mcr.microsoft.com/*"], True),
        ("MCR.microsoft.com/azureiotedge-hub", ["mcr.microsoft.com/azureiotedge-*"], True),
        ("docker.io/library/x", ["mcr.microsoft.com/*"], False),
    ],
)
def test_matches_any(name: str, patterns: list[str], matched: bool) -> None:
    assert matches_any(name, patterns) is matched


def test_lint_validation() -> None:
    with pytest.raises(ValidationError, match="unknown lint rule 'no-such-rule'"):
        LintSettings(disabled=["no-such-rule"])
    with pytest.raises(ValidationError, match="unknown lint rule"):
        LintSettings.model_validate({"severity": {"nope": "error"}})
    with pytest.raises(ValidationError):
        LintSettings.model_validate({"severity": {"mutable-tag": "fatal"}})
    with pytest.raises(ValidationError, match=r"major\.minor"):
        LintSettings(expected_daemon_version="1.5.3")
    with pytest.raises(ValidationError, match=r"major\.minor"):
        LintSettings(supported_runtime_lines=["1"])
    with pytest.raises(ValidationError):
        LintSettings.model_validate({"profile": "strict"})


def test_lint_overrides_apply_on_top() -> None:
    base = LintSettings(disabled=["twin-size", "log-limits"], severity={"mutable-tag": "info"})
    run = base.with_overrides(
        disable=["debug-port"],
        enable=["log-limits"],
        severity={"host-storage": "off"},
        profile="production",
        template=True,
    )
    assert run.disabled == ["twin-size", "debug-port"]
    assert run.severity == {"mutable-tag": "info", "host-storage": "off"}
    assert run.profile == "production"
    assert run.template is True
    assert base.with_overrides().model_dump() == base.model_dump()
    with pytest.raises(ValidationError):
        base.with_overrides(disable=["bogus"])


def test_lint_severity_off_survives_yaml() -> None:
    settings = LintSettings.model_validate({"severity": {"message-ttl": False, "twin-size": "off"}})
    assert settings.severity == {"message-ttl": "off", "twin-size": "off"}
    with pytest.raises(ValidationError):
        LintSettings.model_validate({"severity": {"message-ttl": True}})

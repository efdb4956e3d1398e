"""What a user can configure about `mirror rewrite` and `mirror lint`.

Two self-contained pydantic models with defaults, meant to be embedded in the
top-level configuration: `RewriteSettings` (which source repositories are mirrored,
which platforms the fleet needs from the target, how the pull credential entry is
named and which variables stand for its secrets) and `LintSettings` (rules disabled or re-graded,
the profile, and the facts about the fleet that some rules need). Values are
validated when loaded; rule ids are checked against the catalog.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mirror.deployment.lint.catalog import RULE_IDS

_VARIABLE = re.compile(r"^(?:\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\})$")
_CREDENTIAL_NAME = re.compile(r"^[^.$# ]+$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")
_LINE = re.compile(r"^[0-9]+\.[0-9]+$")

DEFAULT_SOURCES = ("mcr.microsoft.com/azureiotedge-*",)
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
Profile = Literal["default", "production"]
SeverityOrOff = Literal["error", "warning", "info", "off"]


def matches_any(name: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether the repository `name` (`registry/repository`) matches a glob in `patterns`."""
    return any(fnmatchcase(name.lower(), pattern.lower()) for pattern in patterns)


class RewriteSettings(BaseModel):
    """How `mirror rewrite` maps images and writes the pull credential entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SOURCES),
        description="Globs over `registry/repository` of the images that are mirrored;"
        " e.g. `mcr.microsoft.com/*` for every MCR image.",
    )
    platforms: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PLATFORMS),
        description="Platforms (os/arch[/variant]) every rewritten image must have in the"
        " target; the check before writing fails when one is missing.",
    )
    credentials: bool = Field(
        default=True, description="Add or update the registryCredentials entry of the target."
    )
    credential_name: str | None = Field(
        default=None,
        description="Name of the registryCredentials entry (default: the registry name).",
    )
    username_variable: str = Field(
        default="$MIRROR_PULL_USERNAME", description="Placeholder written as the username."
    )
    password_variable: str = Field(
        default="$MIRROR_PULL_PASSWORD", description="Placeholder written as the password."
    )

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one source repository pattern")
        for pattern in value:
            if "/" not in pattern:
                raise ValueError(f"{pattern!r}: write patterns as registry/repository")
        return value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one platform, e.g. linux/amd64")
        for platform in value:
            if not _PLATFORM.match(platform):
                raise ValueError(
                    f"{platform!r} is not a platform: write os/arch[/variant], e.g. linux/arm/v7"
                )
        return list(dict.fromkeys(value))

    @field_validator("credential_name")
    @classmethod
    def _credential_name(cls, value: str | None) -> str | None:
        if value is not None and not _CREDENTIAL_NAME.match(value):
            raise ValueError(f"{value!r}: a credential name has no '.', '$', '#' or space")
        return value

    @field_validator("username_variable", "password_variable")
    @classmethod
    def _variable(cls, value: str) -> str:
        if not _VARIABLE.match(value):
            raise ValueError(
                f"{value!r} is not a placeholder: write $NAME or ${{NAME}}"
                " (manifests never get the secret itself)"
            )
        return value

    def is_source(self, name: str) -> bool:
        return matches_any(name, self.sources)


class LintSettings(BaseModel):
    """Which lint rules run, how severe they are, and what the fleet looks like."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    disabled: list[str] = Field(default_factory=list, description="Rule ids not to run.")
    severity: dict[str, SeverityOrOff] = Field(
        default_factory=dict, description="Rule id -> error | warning | info | off."
    )
    profile: Profile = Field(
        default="default",
        description="`production` raises production-checklist warnings to errors.",
    )
    template: bool | None = Field(
        default=None, description="Treat files as templates (true), deployable (false), or detect."
    )
    expected_daemon_version: str | None = Field(
        default=None, description="The fleet's aziot-edge major.minor, e.g. `1.5`."
    )
    daemon_log_policy: bool = Field(
        default=False, description="The fleet sets log limits daemon-wide (daemon.json)."
    )
    push_username: str | None = Field(
        default=None, description="The identity the mirror pushes with; devices must not use it."
    )
    private_registry: str | None = Field(
        default=None, description="The registry runtime images must come from (the mirror)."
    )
    runtime_sources: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SOURCES),
        description="Globs of the public runtime repositories that should be mirrored.",
    )
    public_registries: list[str] = Field(
        default_factory=lambda: ["mcr.microsoft.com", "docker.io"],
        description="Registries that need no registryCredentials entry.",
    )
    supported_runtime_lines: list[str] | None = Field(
        default=None, description="Supported runtime lines (default: the built-in catalog)."
    )
    constrained_devices: bool | None = Field(
        default=None, description="Devices are small (default: detect arm32v7 images)."
    )
    twin_size_warning_bytes: int = Field(
        default=28 * 1024, gt=0, description="Warn when $edgeAgent desired is this large."
    )

    @field_validator("disabled")
    @classmethod
    def _disabled(cls, value: list[str]) -> list[str]:
        for rule in value:
            _check_rule(rule)
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        """YAML reads a bare `off` as false: take it as the level it was meant to be."""
        if isinstance(value, dict):
            return {rule: "off" if level is False else level for rule, level in value.items()}
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: dict[str, SeverityOrOff]) -> dict[str, SeverityOrOff]:
        for rule in value:
            _check_rule(rule)
        return value

    @field_validator("expected_daemon_version")
    @classmethod
    def _daemon(cls, value: str | None) -> str | None:
        if value is not None and not _LINE.match(value):
            raise ValueError(f"{value!r}: write the daemon version as major.minor, e.g. 1.5")
        return value

    @field_validator("supported_runtime_lines")
    @classmethod
    def _lines(cls, value: list[str] | None) -> list[str] | None:
        for line in value or []:
            if not _LINE.match(line):
                raise ValueError(f"{line!r}: write runtime lines as major.minor, e.g. 1.5")
        return value

    def with_overrides(
        self,
        *,
        disable: list[str] | tuple[str, ...] = (),
        enable: list[str] | tuple[str, ...] = (),
        severity: dict[str, SeverityOrOff] | None = None,
        profile: Profile | None = None,
        template: bool | None = None,
    ) -> LintSettings:
        """These settings with the choices of one run applied on top (validated)."""
        disabled = [r for r in self.disabled if r not in enable] + [
            r for r in disable if r not in self.disabled
        ]
        data = self.model_dump()
        data.update(
            disabled=disabled,
            severity={**self.severity, **(severity or {})},
            profile=profile or self.profile,
            template=self.template if template is None else template,
        )
        return LintSettings.model_validate(data)


def _check_rule(rule: str) -> None:
    if rule not in RULE_IDS:
        raise ValueError(f"unknown lint rule {rule!r}; the rules are: {', '.join(RULE_IDS)}")

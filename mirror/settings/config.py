"""The `mirror.yaml` settings, validated once at load (pydantic); defaults live here.

    version: 1
    source: mcr.microsoft.com              # registry, or oci:PATH
    target: oci:./mirror-store             # registry, or oci:PATH
    repositories: [azureiotedge-agent, azureiotedge-hub]
    policy: policies/iotedge-runtime.yaml  # which tags are mirrored, and how (default: shipped)
    lines: ["1.6"]                         # runtime lines to mirror (default: the release feed's)
    concurrency: 8
    ledger: /var/lib/mirror/ledger.sqlite  # or a SQLAlchemy URL (postgresql://...)
    deployments:                           # also mirror what these manifests pull
      files: [deployments/*.json]          # paths or globs (a bare list is the same)
      registries: [mcr.microsoft.com]      # images from these are mirrored (the default)
      set: {EDGE_RUNTIME_VERSION: "1.5"}   # values for the manifests' placeholders
      allow: []                            # `latest` and/or `debug`, when named
    rewrite: {...}                         # `mirror rewrite` (see mirror/deployment/settings.py)
    lint: {...}                            # `mirror lint`
    registries:                            # per-registry settings, keyed by host[:port]
      registry.example.com:
        insecure: true                     # allow plain http to a non-loopback host
        ca_bundle: /etc/ssl/my-ca.pem
        username: mirror
        password_env: MIRROR_REGISTRY_PASSWORD
      myacr.azurecr.io:
        push:                              # what `mirror sync` pushes with (acrPush)
          type: service-principal
          tenant_id: ...
          client_id: ...
          client_secret_env: MIRROR_PUSH_SECRET
        pull: {type: basic, username: <app id>, password_env: MIRROR_PULL_SECRET}  # devices

Secrets are never stored in the file: a password is named by the environment
variable that holds it, and read (as a `SecretStr`) only when a registry is opened.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mirror.deployment.settings import LintSettings, RewriteSettings
from mirror.errors import ConfigError
from mirror.governance.versions import Line
from mirror.reference import validate_repository
from mirror.settings.registries import RegistrySettings
from mirror.settings.service import ServiceSettings
from mirror.transport.endpoint import registry_name
from mirror.yamlfile import Settings, load_model

DEFAULT_SOURCE = "mcr.microsoft.com"
DEFAULT_TARGET = "oci:./mirror-store"
DEFAULT_REPOSITORIES = ("azureiotedge-agent", "azureiotedge-hub")
CONFIG_FILE = "mirror.yaml"


class Deployments(Settings):
    """Deployment manifests whose images are mirrored on top of the policy's selection
    (`mirror sync --from-manifests` on the command line), so that the service keeps
    them up to date."""

    files: tuple[str, ...] = ()
    registries: tuple[str, ...] = ("mcr.microsoft.com",)
    set: dict[str, str] = Field(default_factory=dict)
    allow: tuple[Literal["latest", "debug"], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, value: object) -> object:
        return {"files": value} if isinstance(value, list) else value

    def paths(self, cwd: Path | None = None) -> list[Path]:
        """The files named (globs expanded, relative to `cwd`), in order, each once; a
        pattern that matches nothing is an error, not a quiet empty list."""
        base = cwd or Path.cwd()
        found: list[Path] = []
        for pattern in self.files:
            matched = (
                [base / m for m in sorted(glob.glob(pattern, root_dir=base))]
                if _is_glob(pattern)
                else [base / pattern]
            )
            if not matched:
                raise ConfigError(
                    f"deployments.files: {pattern!r} matches no file (paths are relative to "
                    f"the working directory, {base})"
                )
            found += [path for path in matched if path not in found]
        return found


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


class Config(Settings):
    version: Literal[1] = 1
    source: str = DEFAULT_SOURCE
    target: str = DEFAULT_TARGET
    repositories: tuple[str, ...] = DEFAULT_REPOSITORIES
    policy: Path | None = None
    lines: tuple[str, ...] | None = None
    concurrency: int = Field(default=8, ge=1, le=64)
    ledger: str | None = Field(
        default=None,
        description="SQLite file or SQLAlchemy URL; default: $XDG_STATE_HOME/mirror/ledger.sqlite",
    )
    registries: dict[str, RegistrySettings] = Field(default_factory=dict)
    deployments: Deployments = Field(default_factory=Deployments)
    rewrite: RewriteSettings = Field(default_factory=RewriteSettings)
    lint: LintSettings = Field(default_factory=LintSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    @field_validator("registries")
    @classmethod
    def _hosts(cls, value: dict[str, RegistrySettings]) -> dict[str, RegistrySettings]:
        """Keys are `host[:port]`, one name per registry however spelled (a scheme, a
        default port, upper case and a trailing slash are dropped: `registry_name`)."""
        hosts: dict[str, RegistrySettings] = {}
        for host, settings in value.items():
            try:
                key = registry_name(host.strip())
            except ConfigError as error:
                raise ValueError(f"{host}: {error}") from None
            if key in hosts:
                raise ValueError(f"{host} is listed twice (as {key})")
            hosts[key] = settings
        return hosts

    @field_validator("lines")
    @classmethod
    def _lines(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            for line in value:
                Line.parse(line)
        return value

    @field_validator("repositories")
    @classmethod
    def _repositories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one repository")
        for name in value:
            validate_repository(name)
        return value

    def registry(self, host: str) -> RegistrySettings:
        """Settings for the registry `host` names (see `registry_name`), or the defaults."""
        try:
            key = registry_name(host)
        except ConfigError:
            key = host.lower()
        return self.registries.get(key, RegistrySettings())


def load_config(path: Path | None = None, *, cwd: Path | None = None) -> Config:
    """`path` if given, else `mirror.yaml` in the working directory if present, else defaults."""
    if path is None:
        candidate = (cwd or Path.cwd()) / CONFIG_FILE
        if not candidate.exists():
            return Config()
        path = candidate
    return load_model(path, Config, what="config")

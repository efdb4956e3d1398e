"""The `mirror.yaml` settings, validated once at load (pydantic); defaults live here.

    version: 1
    source: mcr.microsoft.com              # registry, or oci:PATH
    target: oci:./mirror-store             # registry, or oci:PATH
    repositories: [azureiotedge-agent, azureiotedge-hub]
    policy: policies/iotedge-runtime.yaml  # which tags are mirrored, and how (default: shipped)
    lines: ["1.6"]                         # runtime lines to mirror (default: the release feed's)
    concurrency: 8
    ledger: /var/lib/mirror/ledger.sqlite  # or a SQLAlchemy URL (postgresql://...)
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

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from mirror.deployment.settings import LintSettings, RewriteSettings
from mirror.errors import ConfigError
from mirror.reference import validate_repository
from mirror.versions import Line
from mirror.yamlfile import load_model

DEFAULT_SOURCE = "mcr.microsoft.com"
DEFAULT_TARGET = "oci:./mirror-store"
DEFAULT_REPOSITORIES = ("azureiotedge-agent", "azureiotedge-hub")
CONFIG_FILE = "mirror.yaml"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(variable: str, environ: Mapping[str, str] | None = None) -> SecretStr:
    """The secret in environment variable `variable` (read when needed, never stored)."""
    env = os.environ if environ is None else environ
    value = env.get(variable)
    if value is None:
        raise ConfigError(f"environment variable {variable} is not set")
    return SecretStr(value)


class ServicePrincipal(Settings):
    """A Microsoft Entra service principal with a client secret or a certificate."""

    type: Literal["service-principal"]
    tenant_id: str
    client_id: str
    client_secret_env: str | None = None
    certificate_path: Path | None = None
    certificate_password_env: str | None = None
    authority: str | None = Field(
        default=None, description="Entra authority host for sovereign or private clouds"
    )
    ca_bundle: Path | None = Field(default=None, description="CA bundle to trust for the authority")

    @model_validator(mode="after")
    def _one_secret(self) -> ServicePrincipal:
        if (self.client_secret_env is None) == (self.certificate_path is None):
            raise ValueError("set exactly one of client_secret_env and certificate_path")
        return self

    def describe(self) -> str:
        return f"service principal {self.client_id}"


class ManagedIdentity(Settings):
    """The Azure managed identity of the machine (system- or user-assigned)."""

    type: Literal["managed-identity"]
    client_id: str | None = None

    def describe(self) -> str:
        return f"managed identity {self.client_id or '(system-assigned)'}"


class WorkloadIdentity(Settings):
    """AKS workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE)."""

    type: Literal["workload-identity"]

    def describe(self) -> str:
        return "the workload identity"


class AzureDefault(Settings):
    """azure-identity's DefaultAzureCredential chain (AZURE_* variables, managed identity,
    az login, ...)."""

    type: Literal["azure-default"]

    def describe(self) -> str:
        return "the default Azure credential chain"


class BasicLogin(Settings):
    """A user name and a password held in an environment variable: a service principal's
    id and secret (ACR accepts them on its token endpoint), an ACR repository-scoped
    token, or any registry's login."""

    type: Literal["basic"]
    username: str
    password_env: str

    def password(self, environ: Mapping[str, str] | None = None) -> SecretStr:
        return read_secret(self.password_env, environ)

    def describe(self) -> str:
        return f"user {self.username}"


EntraIdentity = ServicePrincipal | ManagedIdentity | WorkloadIdentity | AzureDefault
Identity = Annotated[EntraIdentity | BasicLogin, Field(discriminator="type")]


class RegistrySettings(Settings):
    """How to reach and authenticate to one registry.

    `push` is the identity `mirror sync` writes with; `pull` the one devices use (its
    user name appears in deployments only as a placeholder; `mirror doctor` checks it
    can pull and cannot push). `username` + `password_env` is a shorthand for a
    `basic` identity used for both.
    """

    insecure: bool = False
    ca_bundle: Path | None = None
    username: str | None = None
    password_env: str | None = Field(
        default=None, description="environment variable holding the password or token"
    )
    acr: bool | None = Field(
        default=None, description="Azure Container Registry (default: host ends in .azurecr.io)"
    )
    push: Identity | None = None
    pull: Identity | None = None
    lock_specific_tags: bool = Field(
        default=True, description="on ACR, lock each mirrored specific tag (write/delete off)"
    )

    @model_validator(mode="after")
    def _login_pair(self) -> RegistrySettings:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("set both username and password_env, or neither")
        return self

    def identity(self, *, push: bool) -> Identity | None:
        """The identity for writing (`push`) or reading."""
        chosen = self.push if push else (self.pull or self.push)
        if chosen is not None:
            return chosen
        if self.username is not None and self.password_env is not None:
            return BasicLogin(type="basic", username=self.username, password_env=self.password_env)
        return None


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
    rewrite: RewriteSettings = Field(default_factory=RewriteSettings)
    lint: LintSettings = Field(default_factory=LintSettings)

    @field_validator("registries")
    @classmethod
    def _hosts(cls, value: dict[str, RegistrySettings]) -> dict[str, RegistrySettings]:
        """Keys are `host[:port]`, matched case-insensitively (as DNS names are)."""
        hosts: dict[str, RegistrySettings] = {}
        for host, settings in value.items():
            key = host.strip().lower()
            if key in hosts:
                raise ValueError(f"{host} is listed twice (host names ignore case)")
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
        """Settings for `host` (exact `host[:port]` key), or the defaults."""
        return self.registries.get(host.lower(), RegistrySettings())


def load_config(path: Path | None = None, *, cwd: Path | None = None) -> Config:
    """`path` if given, else `mirror.yaml` in the working directory if present, else defaults."""
    if path is None:
        candidate = (cwd or Path.cwd()) / CONFIG_FILE
        if not candidate.exists():
            return Config()
        path = candidate
    return load_model(path, Config, what="config")

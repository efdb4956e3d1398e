"""Who mirror authenticates as: the identities `mirror.yaml` can name per registry.

A `basic` login (any registry; a service principal's id and secret, an ACR token, the
admin user), or a Microsoft Entra identity for Azure Container Registry: a service
principal (secret or certificate), a managed identity, an AKS workload identity, or
azure-identity's default chain. Secrets are never in the file: each is named by the
environment variable that holds it and read (as a `SecretStr`) only when needed.
Turning an Entra identity into a credential is `acr/entra.py`'s job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from mirror.errors import ConfigError
from mirror.yamlfile import Settings


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

"""Microsoft Entra ID credentials from configuration: the one module that imports
azure-identity (and only when an ACR registry is opened with an Entra identity).

- `service-principal`: `ClientSecretCredential` (the secret read from an environment
  variable) or `CertificateCredential`;
- `managed-identity`: `ManagedIdentityCredential` (optionally user-assigned);
- `workload-identity`: `WorkloadIdentityCredential` (AKS; AZURE_* variables);
- `azure-default`: `DefaultAzureCredential` (AZURE_CLIENT_ID, AZURE_TENANT_ID and
  AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH; managed identity; az login).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from mirror.errors import ConfigError
from mirror.transport.acr.tokens import EntraCredential
from mirror.transport.identities import (
    AzureDefault,
    EntraIdentity,
    ManagedIdentity,
    ServicePrincipal,
    WorkloadIdentity,
)

PUBLIC_AUTHORITY = "login.microsoftonline.com"


def credential(
    identity: EntraIdentity, environ: Mapping[str, str] | None = None
) -> EntraCredential:
    """The azure-identity credential an identity setting describes."""
    from azure import identity as azure_identity

    # azure-identity logs each failure as a warning; mirror reports it once, as its
    # own one-line error (see `AcrTokens`), so keep the library's copy off stderr.
    logging.getLogger("azure").addHandler(logging.NullHandler())
    logging.getLogger("azure").propagate = False

    if isinstance(identity, ServicePrincipal):
        return _service_principal(identity, os.environ if environ is None else environ)
    if isinstance(identity, ManagedIdentity):
        if identity.client_id:
            return azure_identity.ManagedIdentityCredential(client_id=identity.client_id)
        return azure_identity.ManagedIdentityCredential()
    if isinstance(identity, WorkloadIdentity):
        return azure_identity.WorkloadIdentityCredential()
    assert isinstance(identity, AzureDefault)
    return azure_identity.DefaultAzureCredential()


def _service_principal(identity: ServicePrincipal, env: Mapping[str, str]) -> EntraCredential:
    from azure.identity import CertificateCredential, ClientSecretCredential

    options: dict[str, Any] = {}
    if identity.authority:
        options["authority"] = identity.authority
        if PUBLIC_AUTHORITY not in identity.authority:
            options["disable_instance_discovery"] = True
    if identity.ca_bundle:
        options["connection_verify"] = str(identity.ca_bundle)
    if identity.certificate_path is not None:
        password = env.get(identity.certificate_password_env or "")
        return CertificateCredential(
            identity.tenant_id,
            identity.client_id,
            certificate_path=str(identity.certificate_path),
            password=password,
            **options,
        )
    assert identity.client_secret_env is not None
    secret = env.get(identity.client_secret_env)
    if not secret:
        raise ConfigError(
            f"environment variable {identity.client_secret_env} (client secret of "
            f"{identity.client_id}) is not set"
        )
    return ClientSecretCredential(identity.tenant_id, identity.client_id, secret, **options)

"""The `registries:` section of `mirror.yaml`: how to reach one registry.

Keyed by `host[:port]`: TLS (a CA bundle, or plain http allowed for a non-loopback
host), the identities that push and pull, whether it is Azure Container Registry,
and whether mirrored specific tags are locked there.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from mirror.transport.identities import BasicLogin, Identity
from mirror.yamlfile import Settings


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
    token_realms: tuple[str, ...] = Field(
        default=(),
        description="hosts besides the registry's own that may receive its credentials "
        "as its token service (a registry whose realm is on another host)",
    )
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

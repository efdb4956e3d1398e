"""The `registries:` section of `mirror.yaml`: how to reach one registry.

Keyed by `host[:port]`: TLS (a CA bundle, or plain http allowed for a non-loopback
host), the address to dial for it (like curl's `--resolve`: a private endpoint or
split DNS), the identities that push and pull, whether it is Azure Container
Registry, and whether mirrored specific tags are locked there.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from mirror.transport.identities import BasicLogin, Identity
from mirror.yamlfile import Settings

# host[:port]: a name or IPv4 address, or an IPv6 address in brackets
_HOST_PORT = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9][A-Za-z0-9.-]*))"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """`host[:port]` (`10.1.2.3:443`, `[fd00::5]`, `registry.test:5000`) as (host, port):
    the host lowercase and without brackets, `default_port` when none is given."""
    match = _HOST_PORT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a host[:port]: {text!r} (e.g. 10.1.2.3:443)")
    port = int(match["port"]) if match["port"] else default_port
    if not 0 < port < 65536:
        raise ValueError(f"port {port} of {text!r} is not 1-65535")
    return (match["ipv6"] or match["name"]).lower(), port


class RegistrySettings(Settings):
    """How to reach and authenticate to one registry.

    `push` is the identity `mirror sync` writes with; `pull` the one devices use (its
    user name appears in deployments only as a placeholder; `mirror doctor` checks it
    can pull and cannot push). `username` + `password_env` is a shorthand for a
    `basic` identity used for both.
    """

    insecure: bool = False
    ca_bundle: Path | None = None
    address: str | None = Field(
        default=None,
        description="dial this address (`10.1.2.3:443`; without a port, the registry's "
        "own port) for the registry's host instead of looking its name up, directly, not "
        "through a proxy; TLS and the Host header still use the host name",
    )
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

    @field_validator("address")
    @classmethod
    def _address_form(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value, 443)
        return value

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

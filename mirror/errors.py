"""The failures mirror reports: each is a one-line message a user can act on.

Every error the CLI prints derives from `MirrorError`; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class MirrorError(Exception):
    """A failure with a message fit for a single line of output."""

    exit_code = 1


class ConfigError(MirrorError):
    """A configuration file, policy file or command-line value is not valid."""

    exit_code = 2


class InvalidReference(MirrorError, ValueError):
    """A string is not a valid image reference, repository, tag or digest."""

    exit_code = 2


class ManifestError(MirrorError):
    """A manifest is malformed or of a media type mirror cannot copy faithfully."""


class DigestMismatch(MirrorError):
    """Content did not hash to the digest that names it."""

    def __init__(self, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"{what} digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class RegistryError(MirrorError):
    """A registry (or OCI layout) refused or failed a request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Unreachable(RegistryError):
    """The registry could not be reached at all (DNS, connection, TLS)."""


class CircuitOpen(Unreachable):
    """A registry failed too many requests in a row: new work against it is not tried."""


class AuthenticationError(RegistryError):
    """The registry or its token service refused the credentials (or their absence)."""


class NotFound(RegistryError):
    """A repository, tag, manifest or blob does not exist."""

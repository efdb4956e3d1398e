"""One interface for every place images live: a registry or an OCI layout directory.

`Store` is what the copy engine talks to; `Location` is a parsed `--source`/`--target`
value (`host[:port][/prefix]`, `https://host`, `http://127.0.0.1:5000`, `oci:PATH`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from mirror.errors import ConfigError, NotFound
from mirror.manifest import Descriptor, Manifest
from mirror.referrers import Referrers
from mirror.transport.endpoint import Endpoint

OCI_PREFIX = "oci:"

BlobSource = Callable[[], AbstractContextManager[Iterator[bytes]]]
Written = Literal["present", "mounted", "uploaded"]


class Store(Protocol):
    """Tags, manifests and blobs of repositories, wherever they are kept.

    Safe to call from several threads at once.
    """

    @property
    def name(self) -> str: ...

    def list_tags(self, repository: str) -> list[str]: ...

    def resolve(self, repository: str, reference: str) -> Descriptor | None: ...

    def get_manifest(
        self, repository: str, reference: str, expected_digest: str | None = None
    ) -> Manifest: ...

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None: ...

    def has_blob(self, repository: str, descriptor: Descriptor) -> bool: ...

    def read_blob(
        self, repository: str, descriptor: Descriptor
    ) -> AbstractContextManager[Iterator[bytes]]: ...

    def write_blob(
        self,
        repository: str,
        descriptor: Descriptor,
        source: BlobSource,
        mount_from: str | None = None,
    ) -> Written: ...

    def referrers(
        self, repository: str, digest: str, artifact_types: Sequence[str] = ()
    ) -> Referrers: ...

    def referrers_changed(
        self, repository: str, digest: str, fingerprint: str, artifact_types: Sequence[str] = ()
    ) -> Referrers | None: ...

    def put_referrer(self, repository: str, referrer: Manifest) -> None: ...

    def close(self) -> None: ...


def tags_or_empty(store: Store, repository: str) -> list[str]:
    """The tags of `repository`; none when `store` does not have the repository."""
    try:
        return store.list_tags(repository)
    except NotFound:
        return []


@dataclass(frozen=True, slots=True)
class RegistryLocation:
    endpoint: Endpoint
    prefix: str = ""

    def __str__(self) -> str:
        return f"{self.endpoint}/{self.prefix}" if self.prefix else str(self.endpoint)

    @property
    def name(self) -> str:
        """The registry and prefix without the scheme: one name however it is spelled."""
        return f"{self.endpoint.host}/{self.prefix}" if self.prefix else self.endpoint.host


@dataclass(frozen=True, slots=True)
class LayoutLocation:
    path: Path

    def __str__(self) -> str:
        return f"{OCI_PREFIX}{self.path}"


Location = RegistryLocation | LayoutLocation


def parse_location(text: str, *, insecure: bool = False) -> Location:
    """`oci:PATH` is a layout directory; anything else is a registry address, with an
    optional repository prefix (`myacr.azurecr.io/edge`)."""
    if text.startswith(OCI_PREFIX):
        path = text[len(OCI_PREFIX) :]
        if not path:
            raise ConfigError("oci: needs a directory path, e.g. oci:./mirror-store")
        return LayoutLocation(Path(path))
    return RegistryLocation(*Endpoint.parse_with_prefix(text, insecure=insecure))

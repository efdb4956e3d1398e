"""ACR's metadata API (`/acr/v1`): tag and manifest attributes, and locking.

`AcrMetadata` reads and changes tag and manifest attributes
(`/acr/v1/<repo>/_tags/<tag>`, `/_manifests/<digest>`) through a registry client's
authenticated connection: locking a mirrored specific tag means
`writeEnabled=false, deleteEnabled=false` on the tag, its index and every child
manifest. Not part of the OCI distribution spec; a plain registry answers 404.

Repository names go in the path as one `%2F`-encoded segment
(`/acr/v1/edge%2Fazureiotedge-agent/_tags/1.5.0`), as ACR's own clients send them.
A refusal or failure is reported with the code and message of ACR's error body
(`404 TAG_UNKNOWN: the specified tag does not exist`); a token without the right
(`insufficient_scope`) names the action the registry asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from mirror.errors import AuthenticationError, NotFound, RegistryError
from mirror.transport.acr import API_VERSION
from mirror.transport.auth import Challenge
from mirror.transport.registry import RegistryClient, error_body

# What each metadata action takes, for the advice on a refusal.
_NEEDS = {
    "metadata_read": "reading tag attributes needs metadata read (acrPull has it)",
    "metadata_write": "changing tag attributes needs metadata write (e.g. a custom role "
    "with Microsoft.ContainerRegistry/registries/metadata/write)",
}

LOCKED = {"writeEnabled": False, "deleteEnabled": False}


@dataclass(frozen=True, slots=True)
class Attributes:
    """A tag's or manifest's changeable attributes."""

    write_enabled: bool
    delete_enabled: bool

    @property
    def locked(self) -> bool:
        return not self.write_enabled and not self.delete_enabled

    @classmethod
    def from_json(cls, data: Any) -> Attributes:
        attributes = (data or {}).get("changeableAttributes") or {}
        return cls(
            write_enabled=bool(attributes.get("writeEnabled", True)),
            delete_enabled=bool(attributes.get("deleteEnabled", True)),
        )


class AcrMetadata:
    """ACR's `/acr/v1` API through a registry client's authenticated connection."""

    def __init__(self, registry: RegistryClient) -> None:
        self.registry = registry
        self._states: dict[str, dict[str, Attributes]] = {}

    def _url(self, repository: str, rest: str = "") -> str:
        name = quote(self.registry.full_name(repository), safe="")
        return self.registry.url_for(f"/acr/v1/{name}/{rest}")

    def _call(
        self, method: str, url: str, what: str, json: dict[str, bool] | None = None
    ) -> httpx.Response:
        params = {"api-version": API_VERSION}
        response = self.registry.http.request(method, url, params=params, json=json)
        status = response.status_code
        if status == 200:
            return response
        code, message = error_body(response)
        detail = f" ({code}: {message})" if code else (f" ({message})" if message else "")
        name = self.registry.name
        if status == 404:
            raise NotFound(f"{name}: not found: {what}{detail}", status=404, code=code)
        if status in (401, 403):
            raise AuthenticationError(
                f"{name} refused {what}{detail}: {_refusal_advice(response, method)}",
                status=status,
                code=code,
            )
        raise RegistryError(
            f"{name} failed {what}: HTTP {status}{detail}", status=status, code=code
        )

    def tag_states(self, repository: str) -> dict[str, Attributes]:
        """Every tag's attributes, following `Link` pagination (one request per page)."""
        url: str | None = self._url(repository, "_tags?n=100")
        states: dict[str, Attributes] = {}
        while url is not None:
            try:
                response = self._call("GET", url, f"the tags of {repository}")
            except NotFound:
                return states
            for tag in response.json().get("tags") or []:
                states[str(tag.get("name"))] = Attributes.from_json(tag)
            link = response.headers.get("Link")
            url = urljoin(url, link.split(";")[0].strip("<> ")) if link else None
        return states

    def is_locked(self, repository: str, tag: str) -> bool | None:
        """Whether `tag` is locked (the audit's `LockStates`); one listing per repository."""
        if repository not in self._states:
            self._states[repository] = self.tag_states(repository)
        attributes = self._states[repository].get(tag)
        return attributes.locked if attributes is not None else None

    def tag(self, repository: str, tag: str) -> Attributes:
        response = self._call("GET", self._url(repository, f"_tags/{tag}"), f"{repository}:{tag}")
        return Attributes.from_json(response.json().get("tag"))

    def touch(self, repository: str, tag: str) -> None:
        """Write a tag's attributes back unchanged: proves metadata-write permission."""
        current = self.tag(repository, tag)
        unchanged = {"writeEnabled": current.write_enabled, "deleteEnabled": current.delete_enabled}
        url = self._url(repository, f"_tags/{tag}")
        self._call("PATCH", url, f"writing the attributes of {repository}:{tag}", unchanged)

    def lock(self, repository: str, tag: str, digests: Iterable[str]) -> None:
        """Lock the manifests (children first, then the index), then the tag."""
        for digest in digests:
            url = self._url(repository, f"_manifests/{digest}")
            self._call("PATCH", url, f"locking {repository}@{digest}", LOCKED)
        self._call(
            "PATCH", self._url(repository, f"_tags/{tag}"), f"locking {repository}:{tag}", LOCKED
        )


def _refusal_advice(response: httpx.Response, method: str) -> str:
    """What a refused metadata call lacked: the action the challenge named, if any."""
    challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
    wanted = challenge.params.get("scope", "")
    if challenge.params.get("error") == "insufficient_scope" and wanted:
        action = wanted.rpartition(":")[2]
        advice = _NEEDS.get(action, "check the identity's role")
        return f"the credentials were accepted but do not allow {action} ({wanted}): {advice}"
    action = "metadata_read" if method in ("GET", "HEAD") else "metadata_write"
    return f"the identity needs permission to read/write tag attributes ({_NEEDS[action]})"

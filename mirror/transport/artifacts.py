"""Small OCI artifacts with a subject, pushed with oras-py (the provenance records).

oras-py uploads the artifact's blobs and sends its manifest; three of its habits are
worked around here, each measured against distribution 2.8 (`docs/supply-chain.md`):

- its token flow keeps the first token it gets and never asks for a wider scope, so
  the push of a new upload after a `pull` HEAD is refused: it is handed instead the
  `Authorization` mirror's own credentials give for the repository (a Bearer token,
  on ACR the one exchanged for mirror's refresh token, or Basic), so it never logs in
  and never sends credentials anywhere itself;
- `upload_manifest` re-serialises the manifest (the digest would not be the one
  computed), and `push` cannot set `artifactType`: the manifest is sent as exact bytes
  through its `do_request`;
- `do_request` retries any failure five times over about two minutes and sets no
  timeout: a registry that stopped answering must end a run quickly, so it runs once,
  with mirror's own timeouts.

It neither reads `OCI-Subject` nor keeps the referrers tag: `RegistryClient` lists the
artifact for its subject where the registry has no referrers API.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mirror import digest as _digest
from mirror.errors import RegistryError, Unreachable
from mirror.manifest import OCI_MANIFEST, Descriptor, Manifest
from mirror.transport.http import CONNECT_TIMEOUT, READ_TIMEOUT
from mirror.transport.registry import RegistryClient

EMPTY_CONFIG = Descriptor(
    "application/vnd.oci.empty.v1+json",
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    2,
)


def artifact_manifest(
    artifact_type: str, layer: Descriptor, subject: Descriptor, annotations: Mapping[str, str]
) -> Manifest:
    """An OCI image manifest for an artifact: the empty config, one layer, a subject."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_CONFIG.to_json(),
        "layers": [layer.to_json()],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": dict(annotations),
    }
    return Manifest.parse(json.dumps(document, separators=(",", ":")).encode(), OCI_MANIFEST)


class ArtifactPusher:
    """Pushes artifacts into one registry with oras-py, as mirror's identity there."""

    def __init__(self, client: RegistryClient, *, verify: bool | str = True) -> None:
        self.client = client
        self.verify = verify
        self._configs_sent: set[str] = set()  # repositories known to hold the empty config
        self._configs_lock = threading.Lock()  # see _send_config

    def push(
        self,
        repository: str,
        subject: Descriptor,
        artifact_type: str,
        content: bytes,
        annotations: Mapping[str, str],
    ) -> Manifest:
        """Attach `content` (of type `artifact_type`) to `subject`; the manifest pushed."""
        with _as_mirror_errors(self.client.name):
            return self._push(repository, subject, artifact_type, content, annotations)

    def _push(
        self,
        repository: str,
        subject: Descriptor,
        artifact_type: str,
        content: bytes,
        annotations: Mapping[str, str],
    ) -> Manifest:
        layer = Descriptor(artifact_type, _digest.compute(content), len(content))
        manifest = artifact_manifest(artifact_type, layer, subject, annotations)
        registry = self._registry(repository, subject.digest)
        name = self.client.full_name(repository)
        container = registry.get_container(f"{self.client.endpoint.host}/{name}")
        self._send_config(registry, container, repository)
        _upload(registry, container, layer, content, self.client.name)
        url = f"{self.client.endpoint.url}/v2/{name}/manifests/{manifest.digest}"
        headers = {"Content-Type": manifest.media_type}
        response = registry.do_request(url, "PUT", data=manifest.raw, headers=headers)
        _check(response, f"pushing the artifact for {repository}@{subject.digest}", self.client)
        if response.headers.get("OCI-Subject") != subject.digest:
            self.client.list_referrer(repository, subject.digest, manifest)
        return manifest

    def _send_config(self, registry: Any, container: Any, repository: str) -> None:
        """Send the empty config every artifact shares to `repository` once: the first
        push sends it (or finds it there), the others skip it. Concurrent commits of one
        blob rewrite the same link in the registry's storage, which a reader between
        the truncation and the write sees empty (distribution's filesystem driver
        truncates a file before writing it)."""
        with self._configs_lock:
            if repository not in self._configs_sent:
                _upload(registry, container, EMPTY_CONFIG, b"{}", self.client.name)
                self._configs_sent.add(repository)

    def _registry(self, repository: str, reference: str) -> Any:
        endpoint = self.client.endpoint
        registry = _registry_class()(
            hostname=endpoint.host, insecure=endpoint.scheme == "http", auth_backend="token"
        )
        registry.session.verify = self.verify
        registry.session.trust_env = True  # HTTPS_PROXY, as mirror's own client
        registry.session.request = functools.partial(
            registry.session.request, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
        )
        authorization = self.client.authorization(repository, reference)
        if authorization and authorization.startswith("Bearer "):
            registry.auth.set_token_auth(authorization.removeprefix("Bearer "))
        elif authorization:
            registry.session.headers["Authorization"] = authorization
        return registry


@contextmanager
def _as_mirror_errors(where: str) -> Iterator[None]:
    """oras-py's and requests' failures as mirror's own (one line, naming the registry)."""
    import requests

    try:
        yield
    except (requests.RequestException, ValueError, OSError) as error:
        reason = str(error) or type(error).__name__
        raise Unreachable(f"cannot push an artifact to {where}: {reason}") from None


@functools.cache
def _registry_class() -> type:
    import oras.provider

    class Registry(oras.provider.Registry):  # type: ignore[misc]
        """oras-py's registry, its requests sent once (see the module's docstring)."""

        def do_request(self, *args: Any, **kwargs: Any) -> Any:
            return oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)

    return Registry


def _upload(registry: Any, container: Any, blob: Descriptor, data: bytes, where: str) -> None:
    """oras-py uploads from a file: write `data` to one, then upload (HEAD, POST, PUT)."""
    handle, path = tempfile.mkstemp(prefix="mirror-artifact-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        layer = {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}
        response = registry.upload_blob(path, container, layer)
        if response.status_code not in (200, 201, 202):
            raise RegistryError(f"{where} refused blob {blob.digest}: HTTP {response.status_code}")
    finally:
        os.unlink(path)


def _check(response: Any, what: str, client: RegistryClient) -> None:
    if response.status_code not in (200, 201):
        raise RegistryError(
            f"{client.name} failed {what}: HTTP {response.status_code}", status=response.status_code
        )

"""Synthetic multi-platform images, pushed with plain httpx (independently of mirror's client).

An upstream seeded with these looks like the IoT Edge runtime repositories: every tag
is a Docker manifest list or an OCI index with linux/amd64, linux/arm64 and linux/arm/v7
images; images share a per-platform base layer across tags and repositories; OCI
indexes can carry an attestation manifest (platform unknown/unknown, with `subject`).
"""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from mirror.referrers import is_fallback_tag

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_IMAGE = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_IMAGE = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
IN_TOTO = "application/vnd.in-toto+json"

PLATFORMS = (("linux", "amd64", None), ("linux", "arm64", None), ("linux", "arm", "v7"))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pseudo_random(seed: str, size: int) -> bytes:
    """Deterministic incompressible bytes."""
    return hashlib.shake_128(seed.encode()).digest(size)


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=3).encode()


@dataclass
class Pushed:
    """What one `push_release` call put in the registry."""

    repository: str
    tag: str
    digest: str
    media_type: str
    children: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)


class Seeder:
    """Pushes blobs and manifests into one registry over the distribution API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        self.client = httpx.Client(
            base_url=self.url, timeout=30, transport=httpx.HTTPTransport(socket_options=nodelay)
        )

    def close(self) -> None:
        self.client.close()

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        head = self.client.head(f"/v2/{repository}/blobs/{digest}")
        if head.status_code == 200:
            return digest
        start = self.client.post(f"/v2/{repository}/blobs/uploads/")
        start.raise_for_status()
        location = start.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = self.client.put(
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        done.raise_for_status()
        return digest

    def push_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        response = self.client.put(
            f"/v2/{repository}/manifests/{reference}",
            content=raw,
            headers={"Content-Type": media_type},
        )
        response.raise_for_status()
        return sha256(raw)

    def delete_manifest(self, repository: str, digest: str) -> None:
        self.client.delete(f"/v2/{repository}/manifests/{digest}").raise_for_status()

    def push_release(
        self,
        repository: str,
        tag: str,
        *,
        version: str | None = None,
        oci: bool = False,
        attestation: bool = False,
        layer_size: int = 2048,
        base_size: int = 4096,
        platforms: tuple[tuple[str, str, str | None], ...] = PLATFORMS,
        salt: str = "",
    ) -> Pushed:
        """Push one multi-platform release and tag it.

        The base layer depends only on the platform (shared by every tag and repository);
        the app layer and config depend on repository, version and `salt` (change the
        salt to simulate a rebuild of the same version).
        """
        version = version or tag
        image_type, config_type, layer_type = (
            (OCI_IMAGE, OCI_CONFIG, OCI_LAYER)
            if oci
            else (DOCKER_IMAGE, DOCKER_CONFIG, DOCKER_LAYER)
        )
        pushed = Pushed(repository, tag, "", OCI_INDEX if oci else DOCKER_LIST)
        entries: list[dict[str, Any]] = []
        for os_name, arch, variant in platforms:
            platform = f"{os_name}/{arch}" + (f"/{variant}" if variant else "")
            base = pseudo_random(f"base {platform}", base_size)
            app = pseudo_random(f"app {repository} {version} {platform} {salt}", layer_size)
            config = canonical(
                {
                    "architecture": arch,
                    "os": os_name,
                    **({"variant": variant} if variant else {}),
                    "config": {"Labels": {"version": version, "salt": salt}},
                    "rootfs": {"type": "layers", "diff_ids": [sha256(base), sha256(app)]},
                }
            )
            layers = [self.push_blob(repository, blob) for blob in (base, app)]
            config_digest = self.push_blob(repository, config)
            pushed.blobs += [config_digest, *layers]
            image = canonical(
                {
                    "schemaVersion": 2,
                    "mediaType": image_type,
                    "config": {
                        "mediaType": config_type,
                        "size": len(config),
                        "digest": config_digest,
                    },
                    "layers": [
                        {"mediaType": layer_type, "size": len(blob), "digest": sha256(blob)}
                        for blob in (base, app)
                    ],
                }
            )
            image_digest = self.push_manifest(repository, sha256(image), image, image_type)
            pushed.children.append(image_digest)
            platform_json: dict[str, Any] = {"architecture": arch, "os": os_name}
            if variant:
                platform_json["variant"] = variant
            entries.append(
                {
                    "mediaType": image_type,
                    "size": len(image),
                    "digest": image_digest,
                    "platform": platform_json,
                }
            )
            if attestation and oci:
                entries.append(self._attestation(repository, image_digest, len(image), platform))
                pushed.children.append(entries[-1]["digest"])
                pushed.blobs += [entries[-1]["_config"], entries[-1]["_layer"]]
                del entries[-1]["_config"], entries[-1]["_layer"]
        index = canonical(
            {"schemaVersion": 2, "mediaType": pushed.media_type, "manifests": entries}
        )
        pushed.digest = self.push_manifest(repository, tag, index, pushed.media_type)
        return pushed

    def _attestation(
        self, repository: str, subject: str, subject_size: int, platform: str
    ) -> dict[str, Any]:
        config = b"{}"
        statement = canonical({"_type": "https://in-toto.io/Statement/v0.1", "subject": platform})
        config_digest = self.push_blob(repository, config)
        layer_digest = self.push_blob(repository, statement)
        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_IMAGE,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "size": 2,
                    "digest": config_digest,
                },
                "layers": [{"mediaType": IN_TOTO, "size": len(statement), "digest": layer_digest}],
                "subject": {"mediaType": OCI_IMAGE, "size": subject_size, "digest": subject},
            }
        )
        digest = self.push_manifest(repository, sha256(manifest), manifest, OCI_IMAGE)
        return {
            "mediaType": OCI_IMAGE,
            "size": len(manifest),
            "digest": digest,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.digest": subject,
                "vnd.docker.reference.type": "attestation-manifest",
            },
            "_config": config_digest,
            "_layer": layer_digest,
        }

    def tag(self, repository: str, source_tag: str, new_tag: str) -> str:
        """Point `new_tag` at what `source_tag` names (like moving a rolling tag)."""
        accept = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_IMAGE, DOCKER_IMAGE])
        response = self.client.get(
            f"/v2/{repository}/manifests/{source_tag}", headers={"Accept": accept}
        )
        response.raise_for_status()
        media_type = response.headers["Content-Type"]
        return self.push_manifest(repository, new_tag, response.content, media_type)

    def digest_of(self, repository: str, tag: str) -> str | None:
        accept = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_IMAGE, DOCKER_IMAGE])
        response = self.client.head(f"/v2/{repository}/manifests/{tag}", headers={"Accept": accept})
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def has_blob(self, repository: str, digest: str) -> bool:
        return self.client.head(f"/v2/{repository}/blobs/{digest}").status_code == 200

    def has_manifest(self, repository: str, digest: str) -> bool:
        return self.digest_of(repository, digest) == digest

    def tags(self, repository: str) -> list[str]:
        """The image tags (not the referrers tags, `sha256-<hex>`: see `all_tags`)."""
        return [tag for tag in self.all_tags(repository) if not is_fallback_tag(tag)]

    def all_tags(self, repository: str) -> list[str]:
        response = self.client.get(f"/v2/{repository}/tags/list")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

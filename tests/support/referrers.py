"""A stand-in for a registry with the OCI 1.1 referrers API, in front of a real registry.

What it stands in for: a registry implementing "Listing Referrers" and "Pushing
Manifests with Subject" of the OCI distribution spec v1.1. Debian's `docker-registry`
(CNCF distribution 2.8) stores manifests with a `subject` but has no referrers API:
`GET /v2/<name>/referrers/<digest>` is a plain-text 404 there.

What is real: everything else. Every request is forwarded to the upstream registry
unchanged and streamed both ways (hop-by-hop headers dropped, `Location` headers that
point at the upstream rewritten to this service's URL, all other headers such as
`Docker-Content-Digest` kept), so content, tags, uploads and errors are the registry's.

What this service adds:

- `PUT /v2/<name>/manifests/<ref>` whose JSON body has a `subject`: once the registry
  has stored it (201) the referrer is remembered per (name, subject digest) as a
  descriptor (the manifest's `mediaType`, the sha256 of the exact body bytes, its size,
  its `artifactType` or else, for an image manifest, its `config.mediaType`, and its
  annotations if any), and the response carries `OCI-Subject: <subject digest>`.
- `DELETE /v2/<name>/manifests/<digest>`: once the registry has deleted it, it is
  no longer listed as a referrer.
- `GET /v2/<name>/referrers/<digest>`: 200 and an OCI image index of the referrers
  (an empty `manifests` list when there are none, also for an unknown repository or
  subject); `?artifactType=<type>` filters (`OCI-Filters-Applied: artifactType`).
  At most `page_size` descriptors per page; when more remain, a
  `Link: </v2/<name>/referrers/<digest>?...&last=<cursor>>; rel="next"` header (the
  cursor is an opaque sequence number, so deleting or adding referrers between pages
  neither repeats nor skips the others). A malformed digest is a 400 `DIGEST_INVALID`
  with distribution's error body; a malformed name a 400 `NAME_INVALID`.
- `enabled = False` makes it a registry without the API: `/referrers/` is forwarded
  (the upstream's 404) and PUTs get no `OCI-Subject`. Referrers pushed meanwhile are
  still remembered, so switching it back on lists them, as a registry that gained the
  API would.
- `counters`: every request answered (method, path, status, and whether this service
  answered it itself), with `count(method, path_contains)` and `reset()`.

What it does not do: referrers pushed to the upstream directly (bypassing this
service), or stored before it started, are unknown to it; what it remembers lives in
memory only and does not survive `stop()`; one instance is started and stopped once
(its port is reserved at construction). It keeps no referrers tag (`sha256-<hex>`)
up to date: that is the client's job on registries without the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.entra import BackgroundServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_IMAGE = "application/vnd.oci.image.manifest.v1+json"
API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")

_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")
_REFERRERS_PATH = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]*)$")
# The distribution spec's grammar for repository names and digests.
_NAME = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
_DIGEST = re.compile(r"^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_SHA256_HEX = re.compile(r"^[a-f0-9]{64}$")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)


class HasUrl(Protocol):
    """An upstream such as `Registry` or `AcrStandIn`: its `url` is read per request
    (a `Registry` knows its port only once started)."""

    @property
    def url(self) -> str: ...


def is_digest(text: str) -> bool:
    """Whether `text` is a well-formed digest (sha256 ones with 64 lowercase hex)."""
    if not _DIGEST.match(text):
        return False
    algorithm, _, encoded = text.partition(":")
    return algorithm != "sha256" or bool(_SHA256_HEX.match(encoded))


def referrer_descriptor(body: bytes, content_type: str | None) -> tuple[str, dict[str, Any]] | None:
    """(subject digest, descriptor) for a manifest body with a `subject`, else None."""
    try:
        manifest = json.loads(body)
    except ValueError:
        return None
    subject = manifest.get("subject") if isinstance(manifest, dict) else None
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
        return None
    media_type = manifest.get("mediaType") or content_type or OCI_IMAGE
    descriptor: dict[str, Any] = {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
        "size": len(body),
    }
    artifact_type = manifest.get("artifactType") or _config_type(manifest, media_type)
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if isinstance(manifest.get("annotations"), dict) and manifest["annotations"]:
        descriptor["annotations"] = manifest["annotations"]
    return subject["digest"], descriptor


def _config_type(manifest: dict[str, Any], media_type: str) -> str | None:
    """An image manifest's `config.mediaType` (the spec's fallback artifact type)."""
    config = manifest.get("config")
    if media_type != OCI_IMAGE or not isinstance(config, dict):
        return None
    value = config.get("mediaType")
    return value if isinstance(value, str) else None


def distribution_error(status: int, code: str, message: str, detail: Any = None) -> Response:
    """An error answered as distribution answers it: `{"errors":[{code,message,detail}]}`."""
    body = {"errors": [{"code": code, "message": message, "detail": detail or {}}]}
    return JSONResponse(body, status_code=status, headers=dict([API_VERSION_HEADER]))


@dataclass(frozen=True)
class RequestRecord:
    """One request the stand-in answered; `answered_here` when it did not forward it."""

    method: str
    path: str
    query: str
    status: int
    answered_here: bool = False


@dataclass
class ReferrersCounters:
    """What the stand-in has been asked, for assertions such as 'one listing per subject'."""

    requests: list[RequestRecord] = field(default_factory=list)

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        """Requests with this method and/or whose path contains `path_contains`."""
        return sum(
            1
            for r in list(self.requests)
            if (method is None or r.method == method)
            and (path_contains is None or path_contains in r.path)
        )

    def reset(self) -> None:
        self.requests.clear()


@dataclass(frozen=True)
class _Referrer:
    sequence: int  # the order it was first pushed in: the listing order and page cursor
    descriptor: dict[str, Any]


class ReferrersStandIn:
    """The OCI 1.1 referrers API in front of a real registry (see the module docstring).

    `upstream` is a started `Registry` (or anything with a `url`, or a URL); this service
    neither starts nor stops it. Point clients at `url` instead of the upstream's.
    """

    def __init__(
        self, upstream: HasUrl | str, *, page_size: int = 1000, enabled: bool = True
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.upstream = upstream
        self.page_size = page_size
        self.enabled = enabled
        self.counters = ReferrersCounters()
        self._referrers: dict[tuple[str, str], dict[str, _Referrer]] = {}
        self._sequence = itertools.count(1)
        self._server = BackgroundServer(self._app())
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---

    @property
    def url(self) -> str:
        """The registry endpoint clients use (`http://127.0.0.1:<port>`)."""
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def upstream_url(self) -> str:
        url = self.upstream if isinstance(self.upstream, str) else self.upstream.url
        return url.rstrip("/")

    def start(self) -> ReferrersStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        if self._client is not None and self._loop is not None and self._loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop)
            closing.result(timeout=5)
        self._client = self._loop = None
        self._server.stop()

    # --- what it knows ---

    def referrers(self, name: str, subject: str) -> list[dict[str, Any]]:
        """The descriptors listed for `subject` in repository `name`, in listing order."""
        known = self._referrers.get((name, subject), {})
        return [dict(r.descriptor) for r in sorted(known.values(), key=lambda r: r.sequence)]

    def _remember(self, name: str, subject: str, descriptor: dict[str, Any]) -> None:
        known = self._referrers.setdefault((name, subject), {})
        if descriptor["digest"] not in known:
            known[descriptor["digest"]] = _Referrer(next(self._sequence), descriptor)

    def _forget(self, name: str, digest: str) -> None:
        for (repository, _), known in self._referrers.items():
            if repository == name:
                known.pop(digest, None)

    # --- the ASGI app ---

    def _app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{rest:path}", self._handle, methods=methods)])

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        match = _REFERRERS_PATH.match(path)
        here = self.enabled and request.method == "GET" and match is not None
        if here and match is not None:
            response = self._list(request, match["name"], match["digest"])
        else:
            response = await self._forward(request)
        record = RequestRecord(request.method, path, request.url.query, response.status_code, here)
        self.counters.requests.append(record)
        return response

    def _list(self, request: Request, name: str, digest: str) -> Response:
        if not _NAME.match(name):
            return distribution_error(400, "NAME_INVALID", "invalid repository name", {})
        if not is_digest(digest):
            message = "provided digest did not match uploaded content"
            return distribution_error(400, "DIGEST_INVALID", message, {})
        last = request.query_params.get("last", "0")
        if not last.isdigit():
            return distribution_error(400, "PAGINATION_NUMBER_INVALID", "invalid last", {})
        artifact_type = request.query_params.get("artifactType")
        known = sorted(self._referrers.get((name, digest), {}).values(), key=lambda r: r.sequence)
        matching = [
            r
            for r in known
            if r.sequence > int(last)
            and (artifact_type is None or r.descriptor.get("artifactType") == artifact_type)
        ]
        page = matching[: self.page_size]
        return self._page(name, digest, page, artifact_type, more=len(matching) > len(page))

    def _page(
        self,
        name: str,
        digest: str,
        page: list[_Referrer],
        artifact_type: str | None,
        *,
        more: bool,
    ) -> Response:
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [r.descriptor for r in page],
        }
        headers = dict([API_VERSION_HEADER])
        if artifact_type is not None:
            headers["OCI-Filters-Applied"] = "artifactType"
        if more:
            query = [("artifactType", artifact_type)] if artifact_type is not None else []
            query.append(("last", str(page[-1].sequence)))
            target = f"/v2/{name}/referrers/{digest}?{urlencode(query)}"
            headers["Link"] = f'<{target}>; rel="next"'
        return JSONResponse(index, headers=headers, media_type=OCI_INDEX)

    # --- the registry proxy ---

    def _registry_client(self) -> httpx.AsyncClient:
        """The client to the registry, made on the server's event loop at first use."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=60, trust_env=False)
            self._loop = asyncio.get_running_loop()
        return self._client

    async def _forward(self, request: Request) -> Response:
        client = self._registry_client()
        manifest = _MANIFEST_PATH.match(request.url.path)
        body = await request.body() if manifest and request.method == "PUT" else None
        upstream = client.build_request(
            request.method,
            self._upstream_url(request),
            headers=[
                (k, v) for k, v in request.headers.raw if k.decode().lower() not in _HOP_BY_HOP
            ],
            content=body if body is not None else _request_body(request),
        )
        response = await client.send(upstream, stream=True)
        headers = self._downstream_headers(response)
        if manifest is not None:
            headers += self._note_manifest(request, manifest["name"], body, response)
        proxied = StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            background=BackgroundTask(response.aclose),
        )
        proxied.raw_headers = headers
        return proxied

    def _upstream_url(self, request: Request) -> str:
        path = quote(request.url.path, safe="/:@")
        query = request.url.query
        return self.upstream_url + path + (f"?{query}" if query else "")

    def _downstream_headers(self, response: httpx.Response) -> list[tuple[bytes, bytes]]:
        headers = []
        for key, raw in response.headers.raw:
            name, value = key.decode().lower(), raw.decode()
            if name in _HOP_BY_HOP:
                continue
            if name == "location" and value.startswith(self.upstream_url):
                value = self.url + value[len(self.upstream_url) :]
            headers.append((name.encode(), value.encode()))
        return headers

    def _note_manifest(
        self, request: Request, name: str, body: bytes | None, response: httpx.Response
    ) -> list[tuple[bytes, bytes]]:
        """Remember a referrer pushed (201) or forget one deleted (202); the extra headers."""
        reference = request.url.path.rpartition("/")[2]
        if request.method == "DELETE" and response.status_code == 202:
            self._forget(name, reference)
        if request.method != "PUT" or body is None or response.status_code != 201:
            return []
        found = referrer_descriptor(body, request.headers.get("content-type"))
        if found is None:
            return []
        subject, descriptor = found
        self._remember(name, subject, descriptor)
        return [(b"oci-subject", subject.encode())] if self.enabled else []


def _request_body(request: Request) -> AsyncIterator[bytes] | None:
    if request.method in ("POST", "PUT", "PATCH"):
        return request.stream()
    return None

"""The distribution API (OCI distribution spec) over httpx: tags, manifests, blobs.

Manifests travel as raw bytes and are checked against their digest; blobs stream
from one registry to another in constant memory (the copy engine verifies them);
idempotent requests are retried on 429, 5xx and connection errors, honouring
`Retry-After`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal
from urllib.parse import quote, urljoin

import httpx

from mirror import digest as _digest
from mirror.errors import (
    AuthenticationError,
    NotFound,
    RegistryError,
    Unreachable,
)
from mirror.manifest import ACCEPT, Descriptor, Manifest
from mirror.transport.endpoint import Endpoint, RetryPolicy

BlobSource = Callable[[], AbstractAsyncContextManager[AsyncIterator[bytes]]]
Written = Literal["mounted", "uploaded"]
_TAGS_PAGE = 1000
_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def http_client(
    *,
    auth: httpx.Auth | None = None,
    connections: int = 16,
    verify: bool | ssl.SSLContext = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient tuned for registries: TCP_NODELAY (small PUTs would otherwise wait
    for delayed ACKs), redirects followed (blob downloads go to storage hosts),
    no pool timeout (the copy engine bounds concurrency itself)."""
    if transport is None:
        transport = httpx.AsyncHTTPTransport(
            verify=verify,
            socket_options=_NODELAY,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
    return httpx.AsyncClient(
        auth=auth,
        transport=transport,
        follow_redirects=True,
        timeout=httpx.Timeout(30.0, read=120.0, pool=None),
        headers={"User-Agent": "mirror"},
    )


class RegistryClient:
    """One registry. Repository names are given per call; errors name registry and repo."""

    def __init__(
        self,
        endpoint: Endpoint,
        http: httpx.AsyncClient,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.http = http
        self.retry = retry or RetryPolicy()

    @property
    def name(self) -> str:
        return str(self.endpoint)

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- requests ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self.endpoint.url + "/", path.lstrip("/"))

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send one request, retrying transient failures when the body can be replayed."""
        attempts = self.retry.attempts if retry and not _is_stream(content) else 1
        for attempt in range(1, attempts + 1):
            request = self.http.build_request(method, url, headers=headers, content=content)
            try:
                response = await self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise Unreachable(f"cannot reach {self.name}: {_reason(exc)}") from exc
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            if attempt < attempts and self.retry.retryable(response):
                await response.aclose()
                await asyncio.sleep(self.retry.delay(attempt, response))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _check(self, response: httpx.Response, what: str, *ok: int) -> httpx.Response:
        if response.status_code in ok:
            return response
        await response.aread()
        raise _error(response, self.name, what)

    # -- API ------------------------------------------------------------------

    async def ping(self) -> None:
        """`GET /v2/`: the registry speaks the distribution API and accepts us."""
        response = await self._send("GET", self._url("/v2/"))
        await self._check(response, "the API version check", 200)

    async def list_tags(self, repository: str) -> list[str]:
        """Every tag, following `Link` pagination."""
        url: str | None = self._url(f"/v2/{_path(repository)}/tags/list?n={_TAGS_PAGE}")
        tags: list[str] = []
        while url is not None:
            response = await self._send("GET", url)
            await self._check(response, f"the tags of {repository}", 200)
            try:
                page = response.json().get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{self.name}: malformed tag list for {repository}") from None
            tags += [str(tag) for tag in page]
            url = _next_link(response)
            if url is not None:
                url = urljoin(str(response.url), url)
        return tags

    async def resolve(self, repository: str, reference: str) -> Descriptor | None:
        """`HEAD` a manifest: its descriptor, or None when the tag/digest is absent."""
        url = self._url(f"/v2/{_path(repository)}/manifests/{reference}")
        response = await self._send("HEAD", url, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        await self._check(response, f"{repository}:{reference}", 200)
        digest = response.headers.get("Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        length = response.headers.get("Content-Length")
        if not digest or not media_type or length is None:
            manifest = await self.get_manifest(repository, reference)
            return manifest.descriptor()
        return Descriptor(media_type, _digest.validate(digest), int(length))

    async def get_manifest(
        self, repository: str, reference: str, expected_digest: str | None = None
    ) -> Manifest:
        """The manifest's bytes, verified against the digest asked for or announced."""
        url = self._url(f"/v2/{_path(repository)}/manifests/{reference}")
        response = await self._send("GET", url, headers={"Accept": ACCEPT})
        await self._check(response, f"{repository}:{reference}", 200)
        if expected_digest is None and reference.startswith("sha"):
            expected_digest = reference
        if expected_digest is None:
            expected_digest = response.headers.get("Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip() or None
        return Manifest.parse(response.content, media_type, expected_digest)

    async def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """Store `manifest` under a tag or its digest; the registry must agree on the digest."""
        url = self._url(f"/v2/{_path(repository)}/manifests/{reference}")
        headers = {"Content-Type": manifest.media_type}
        response = await self._send("PUT", url, headers=headers, content=manifest.raw)
        await self._check(response, f"pushing {repository}:{reference}", 200, 201)
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != manifest.digest:
            raise RegistryError(
                f"{self.name} stored {repository}:{reference} as {stored}, "
                f"not {manifest.digest}: the registry rewrote the manifest"
            )

    async def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        url = self._url(f"/v2/{_path(repository)}/blobs/{descriptor.digest}")
        response = await self._send("HEAD", url)
        if response.status_code == 404:
            return False
        await self._check(response, f"blob {descriptor.digest} in {repository}", 200)
        return True

    @asynccontextmanager
    async def read_blob(
        self, repository: str, descriptor: Descriptor
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Stream a blob's bytes as served (no content decoding), following redirects."""
        url = self._url(f"/v2/{_path(repository)}/blobs/{descriptor.digest}")
        response = await self._send("GET", url, stream=True)
        try:
            await self._check(response, f"blob {descriptor.digest} in {repository}", 200)
            yield response.aiter_raw()
        finally:
            await response.aclose()

    async def write_blob(
        self,
        repository: str,
        descriptor: Descriptor,
        source: BlobSource,
        mount_from: str | None = None,
    ) -> Written:
        """Mount the blob from another repository of this registry, or upload it.

        A mount the registry turns into an upload session (202) is continued as an
        upload. The upload is one `PUT <location>&digest=` with the whole stream.
        """
        start = self._url(f"/v2/{_path(repository)}/blobs/uploads/")
        if mount_from is not None:
            start += f"?mount={descriptor.digest}&from={quote(mount_from, safe='/')}"
        response = await self._send("POST", start)
        await self._check(response, f"starting an upload to {repository}", 201, 202)
        if response.status_code == 201:
            return "mounted"
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.name}: upload to {repository} started without a Location")
        url = urljoin(str(response.url), location)
        url += ("&" if "?" in url else "?") + f"digest={descriptor.digest}"
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(descriptor.size),
        }
        async with source() as chunks:
            response = await self._send("PUT", url, headers=headers, content=chunks)
        await self._check(response, f"uploading {descriptor.digest} to {repository}", 201)
        return "uploaded"


def _is_stream(content: object) -> bool:
    return content is not None and not isinstance(content, bytes)


def _path(repository: str) -> str:
    return quote(repository, safe="/")


def _next_link(response: httpx.Response) -> str | None:
    for link in response.headers.get_list("Link"):
        for part in link.split(","):
            target, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return target.strip().strip("<>")
    return None


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and not str(cause):
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError) and "ssl" in text.lower():
        return f"TLS failed ({text})"
    return text


def _error(response: httpx.Response, registry: str, what: str) -> RegistryError:
    code, message = _error_body(response)
    status = response.status_code
    detail = f" ({code}: {message})" if code else (f" ({message})" if message else "")
    if status == 401:
        return AuthenticationError(
            f"{registry} refused access to {what}: not authorized{detail}", status=status, code=code
        )
    if status == 403:
        return AuthenticationError(f"{registry} denied {what}{detail}", status=status, code=code)
    if status == 404:
        if code == "NAME_UNKNOWN":
            return NotFound(
                f"{registry}: repository not found for {what}", status=status, code=code
            )
        return NotFound(f"{registry}: not found: {what}{detail}", status=status, code=code)
    return RegistryError(
        f"{registry} failed {what}: HTTP {status}{detail}", status=status, code=code
    )


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body: Any = response.json()
    except ValueError:
        return None, response.text.strip()[:200]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("code") or "") or None, str(first.get("message") or "")
    return None, ""

"""The distribution API (OCI distribution spec) over httpx: tags, manifests, blobs.

Manifests travel as raw bytes and are checked against their digest; blobs stream
from one registry to another in constant memory (the copy engine verifies them);
idempotent requests are retried on 429, 5xx and connection errors, honouring
`Retry-After`. Each worker thread has its own `httpx.Client` (`PerThread`), over
mirror's own wire (`wire.Transport`).
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from mirror import digest as _digest
from mirror.errors import (
    AuthenticationError,
    DigestMismatch,
    ManifestError,
    NotFound,
    RegistryError,
    Unreachable,
)
from mirror.logs import get_logger
from mirror.manifest import ACCEPT, OCI_INDEX, Descriptor, Manifest
from mirror.referrers import (
    NONE,
    Referrers,
    fallback_tag,
    is_fallback_tag,
    listing_index,
    parse_listing,
    with_referrer,
)
from mirror.transport.auth import IDENTITY, Challenge
from mirror.transport.endpoint import RETRIES, Breaker, Endpoint, RetryPolicy, is_loopback
from mirror.transport.http import PerThread
from mirror.transport.store import BlobSource, Written

_TAGS_PAGE = 1000


class RegistryClient:
    """One registry. Repository names are given per call; errors name registry and repo.

    With a `prefix` (`myacr.azurecr.io/edge`), every repository lives under it:
    `azureiotedge-agent` is `edge/azureiotedge-agent` in the registry.
    `check_presence` is for registries whose blob mount does not say whether the blob
    is there (ACR): `write_blob` asks with a `HEAD` first.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        clients: Callable[[], httpx.Client],
        retry: RetryPolicy | None = None,
        prefix: str = "",
        *,
        check_presence: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self._clients = PerThread(clients)
        self.retry = retry or RetryPolicy()
        self.breaker = Breaker()
        self.prefix = prefix.strip("/")
        self.check_presence = check_presence
        self.referrers_api: bool | None = None  # learned: None until the first answer
        self._listing_locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._probe_lock = threading.Lock()  # held while the first referrers request learns

    @property
    def http(self) -> httpx.Client:
        """The calling thread's client."""
        return self._clients.get()

    def full_name(self, repository: str) -> str:
        """The repository's name in the registry (with the prefix)."""
        return f"{self.prefix}/{repository}" if self.prefix else repository

    def _path(self, repository: str) -> str:
        return quote(self.full_name(repository), safe="/")

    @property
    def name(self) -> str:
        return f"{self.endpoint}/{self.prefix}" if self.prefix else str(self.endpoint)

    def close(self) -> None:
        self._clients.close()

    # -- requests ---------------------------------------------------------------

    def url_for(self, path: str) -> str:
        return urljoin(self.endpoint.url + "/", path.lstrip("/"))

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send one request, retrying transient failures when the body can be replayed.

        A request that timed out is tried once more at most (a stalled registry would
        otherwise hold a run for every attempt's timeout), a certificate that failed
        verification is not tried again at all; the registry's `Breaker` stops every
        request at once after too many failures in a row.
        """
        attempts = self.retry.attempts if retry and not _is_stream(content) else 1
        timeouts = 0
        for attempt in range(1, attempts + 1):
            self.breaker.check(self.name)
            request = self.http.build_request(method, url, headers=headers, content=content)
            try:
                response = self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not _about(exc, request):
                    raise  # the streamed body's own source failed, not this registry
                reason = _reason(exc) + self._plain_http_hint(exc)
                self.breaker.failed(reason)
                timeouts += isinstance(exc, httpx.TimeoutException)
                if attempt == attempts or timeouts > 1 or _untrusted(exc):
                    raise Unreachable(f"cannot reach {self.name}: {reason}") from exc
                RETRIES.retried()
                get_logger().debug("request.retry", registry=self.name, reason=reason)
                time.sleep(self.retry.delay(attempt))
                continue
            RETRIES.answered(response.status_code)
            self.breaker.answered(response.status_code)
            if (log := get_logger()).debugging:
                log.debug(
                    "request", registry=self.name, method=method, path=request.url.path,
                    status=response.status_code, attempt=attempt,
                )  # fmt: skip
            if attempt < attempts and self.retry.retryable(response):
                response.close()
                RETRIES.retried()
                time.sleep(self.retry.delay(attempt, response))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _plain_http_hint(self, exc: httpx.TransportError) -> str:
        """A loopback registry that answers TLS with plain HTTP is one started without
        TLS (`docker-registry`, `registry:2`): say how to address it."""
        endpoint = self.endpoint
        if endpoint.scheme != "https" or not is_loopback(endpoint.host):
            return ""
        if "WRONG_VERSION_NUMBER" not in str(exc) and "record layer" not in str(exc):
            return ""
        return f"; is it plain http? write http://{endpoint.host}"

    def _check(self, response: httpx.Response, what: str, *ok: int) -> httpx.Response:
        if response.status_code in ok:
            return response
        response.read()
        raise _error(response, self.name, what)

    # -- API ------------------------------------------------------------------

    def ping(self) -> None:
        """`GET /v2/`: the registry speaks the distribution API and accepts us."""
        response = self._send("GET", self.url_for("/v2/"))
        self._check(response, "the API version check", 200)

    def list_tags(self, repository: str, page_size: int = _TAGS_PAGE) -> list[str]:
        """Every tag of an image, following `Link` pagination; the referrers tags
        (`sha256-<hex>`, lists of signatures and the like) are not images, and left out."""
        url: str | None = self.url_for(f"/v2/{self._path(repository)}/tags/list?n={page_size}")
        tags: list[str] = []
        while url is not None:
            response = self._send("GET", url)
            self._check(response, f"the tags of {repository}", 200)
            try:
                page = response.json().get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{self.name}: malformed tag list for {repository}") from None
            tags += [str(tag) for tag in page if not is_fallback_tag(str(tag))]
            url = _next_link(response)
            if url is not None:
                url = urljoin(str(response.url), url)
        return tags

    def resolve(self, repository: str, reference: str) -> Descriptor | None:
        """`HEAD` a manifest: its descriptor, or None when the tag/digest is absent."""
        url = self.url_for(f"/v2/{self._path(repository)}/manifests/{reference}")
        response = self._send("HEAD", url, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        self._check(response, f"{repository}:{reference}", 200)
        digest = response.headers.get("Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        length = response.headers.get("Content-Length")
        if not digest or not media_type or length is None:
            manifest = self.get_manifest(repository, reference)
            return manifest.descriptor()
        return Descriptor(media_type, _digest.validate(digest), int(length))

    def get_manifest(
        self, repository: str, reference: str, expected_digest: str | None = None
    ) -> Manifest:
        """The manifest's bytes, verified against the digest asked for or announced."""
        url = self.url_for(f"/v2/{self._path(repository)}/manifests/{reference}")
        response = self._send("GET", url, headers={"Accept": ACCEPT})
        self._check(response, f"{repository}:{reference}", 200)
        if expected_digest is None and _digest.is_digest(reference):
            expected_digest = reference
        if expected_digest is None:
            expected_digest = response.headers.get("Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip() or None
        try:
            return Manifest.parse(response.content, media_type, expected_digest)
        except DigestMismatch as error:  # say which manifest, from where
            what = f"{self.name}: manifest {repository}:{reference}"
            raise DigestMismatch(error.expected, error.actual, what) from None
        except ManifestError as error:
            raise ManifestError(f"{self.name}: {repository}:{reference}: {error}") from None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """Store `manifest` under a tag or its digest; the registry must agree on the digest."""
        self._put_manifest(repository, reference, manifest)

    def _put_manifest(
        self,
        repository: str,
        reference: str,
        manifest: Manifest,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = self.url_for(f"/v2/{self._path(repository)}/manifests/{reference}")
        headers = {"Content-Type": manifest.media_type, **(headers or {})}
        response = self._send("PUT", url, headers=headers, content=manifest.raw)
        self._check(response, f"pushing {repository}:{reference}", 200, 201)
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != manifest.digest:
            raise RegistryError(
                f"{self.name} stored {repository}:{reference} as {stored}, "
                f"not {manifest.digest}: the registry rewrote the manifest"
            )
        return response

    # -- referrers --------------------------------------------------------------

    def referrers(
        self, repository: str, digest: str, artifact_types: Sequence[str] = ()
    ) -> Referrers:
        """What the registry lists as referring to `digest` (only `artifact_types`, when
        given): by the referrers API, or by the referrers tag where the registry has no
        such API (learned from the first answer: a 404 from the API means there is none)."""
        if self.referrers_api is None:
            with self._probe_lock:  # one thread finds out, the others wait for the answer
                if self.referrers_api is None:
                    found = self._referrers_by_api(repository, digest, artifact_types)
                    if found is not None:
                        return found
        if self.referrers_api:
            found = self._referrers_by_api(repository, digest, artifact_types)
            if found is not None:
                return found
        return self._referrers_by_tag(repository, digest).of_types(artifact_types)

    def referrers_changed(
        self, repository: str, digest: str, fingerprint: str, artifact_types: Sequence[str] = ()
    ) -> Referrers | None:
        """The referrers of `digest` if they differ from those `fingerprint` names, else
        None; one request (a HEAD of the referrers tag, or one listing by the API)."""
        if self.referrers_api is False:
            listed = self.resolve(repository, fallback_tag(digest))
            if (listed.digest if listed else "") == fingerprint:
                return None
        found = self.referrers(repository, digest, artifact_types)
        return None if found.fingerprint == fingerprint else found

    def _referrers_by_api(
        self, repository: str, digest: str, artifact_types: Sequence[str]
    ) -> Referrers | None:
        """The API's listing, all pages. One artifact type is asked of the registry
        (`?artifactType=`); a registry may ignore the filter (it then does not answer
        `OCI-Filters-Applied`), so the listing is filtered here as well."""
        query = (
            f"?artifactType={quote(artifact_types[0], safe='')}" if len(artifact_types) == 1 else ""
        )
        url: str | None = self.url_for(f"/v2/{self._path(repository)}/referrers/{digest}{query}")
        descriptors: list[Descriptor] = []
        pages = b""
        while url is not None:
            response = self._send("GET", url, headers={"Accept": OCI_INDEX})
            if response.status_code in (404, 405) and not pages:
                self.referrers_api = False
                return None
            self._check(response, f"the referrers of {repository}@{digest}", 200)
            self.referrers_api = True
            descriptors += parse_listing(response.content, f"{self.name} {repository}@{digest}")
            pages += response.content
            url = _next_link(response)
            if url is not None:
                url = urljoin(str(response.url), url)
        fingerprint = _digest.compute(pages) if descriptors else ""
        return Referrers(tuple(descriptors), fingerprint).of_types(artifact_types)

    def _referrers_by_tag(self, repository: str, digest: str) -> Referrers:
        try:
            index = self.get_manifest(repository, fallback_tag(digest))
        except NotFound:
            return NONE
        where = f"{self.name} {repository}:{fallback_tag(digest)}"
        return Referrers(parse_listing(index.raw, where), index.digest)

    def put_referrer(self, repository: str, referrer: Manifest) -> None:
        """Push a manifest that has a `subject`, and make sure the subject's referrers
        list names it: a registry with the referrers API says so (`OCI-Subject`);
        otherwise the referrers tag is updated as the distribution spec describes
        (read, append if absent, write back with `If-Match`)."""
        subject = referrer.subject()
        if subject is None:
            raise ManifestError(f"{referrer.digest}: not a referrer (no subject)")
        response = self._put_manifest(repository, referrer.digest, referrer)
        if response.headers.get("OCI-Subject") != subject.digest:
            self.list_referrer(repository, subject.digest, referrer)

    def list_referrer(self, repository: str, subject: str, referrer: Manifest) -> None:
        """Name `referrer` in the referrers tag of `subject` (for a referrer pushed to a
        registry that did not answer `OCI-Subject`: it has no referrers API)."""
        with self._listing_lock(repository, subject):
            self._list_referrer(repository, subject, referrer.referrer_descriptor())

    def authorization(self, repository: str, reference: str) -> str | None:
        """The `Authorization` header mirror's own credentials give for writing to
        `repository` (found with a HEAD of `reference`): what another client, such as
        oras-py, is handed instead of logging in a second time. None: anonymous."""
        url = self.url_for(f"/v2/{self._path(repository)}/manifests/{reference}")
        response = self._send("HEAD", url, headers={"Accept": ACCEPT})
        self._check(response, f"{repository}:{reference}", 200)
        header: str | None = response.request.headers.get("Authorization")
        return header

    def _list_referrer(self, repository: str, subject: str, added: Descriptor) -> None:
        """Append `added` to the referrers tag of `subject`; another writer that got there
        between the read and the write (a 412 on `If-Match`, or a listing that no longer
        names `added` afterwards) makes it start over, three times at most."""
        tag = fallback_tag(subject)
        for _ in range(3):
            current = self._referrers_by_tag(repository, subject)
            listed = with_referrer(current.descriptors, added)
            if listed is None:
                return
            headers = {"If-Match": f'"{current.fingerprint}"'} if current.fingerprint else {}
            try:
                self._put_manifest(repository, tag, listing_index(listed), headers)
            except RegistryError as error:
                if error.status != 412:
                    raise
                continue
            if added.digest in self._referrers_by_tag(repository, subject).digests:
                return
        raise RegistryError(
            f"{self.name}: the referrers list of {repository}@{subject} kept changing "
            "while adding to it"
        )

    def _listing_lock(self, repository: str, subject: str) -> threading.Lock:
        with self._locks_lock:
            return self._listing_locks.setdefault((repository, subject), threading.Lock())

    def has_blob(self, repository: str, descriptor: Descriptor) -> bool:
        url = self.url_for(f"/v2/{self._path(repository)}/blobs/{descriptor.digest}")
        response = self._send("HEAD", url)
        if response.status_code == 404:
            return False
        self._check(response, f"blob {descriptor.digest} in {repository}", 200)
        return True

    @contextmanager
    def read_blob(self, repository: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        """Stream a blob's bytes as served (no content decoding), following redirects."""
        url = self.url_for(f"/v2/{self._path(repository)}/blobs/{descriptor.digest}")
        response = self._send("GET", url, stream=True)
        try:
            self._check(response, f"blob {descriptor.digest} in {repository}", 200)
            yield response.iter_raw()
        finally:
            response.close()

    def write_blob(
        self,
        repository: str,
        descriptor: Descriptor,
        source: BlobSource,
        mount_from: str | None = None,
    ) -> Written:
        """Make the blob present in `repository`: already there, mounted, or uploaded.

        One request decides: `POST .../blobs/uploads/?mount=<digest>&from=<repo>`
        answers 201 when the blob is in `from` (now linked here too) and 202 with an
        upload session otherwise (distribution spec). Mounting from `repository`
        itself asks "is it here already?" and starts the upload in the same request,
        so a cold copy costs POST + PUT per blob and a present blob one POST. The
        upload is one `PUT <location>&digest=` with the whole stream.

        With `check_presence` (ACR, which answers a mount of a blob it holds with 202
        and a new session, so a mount proves nothing) `HEAD .../blobs/<digest>` asks
        first: a present blob costs one HEAD, a cold copy HEAD + POST + PUT; a
        cross-repository mount is still tried, and its 202 session used to upload.
        """
        if self.check_presence and self.has_blob(repository, descriptor):
            return "present"
        query = ""
        if mount_from or not self.check_presence:
            origin = self.full_name(mount_from or repository)
            query = f"?mount={descriptor.digest}&from={quote(origin, safe='/')}"
        start = self.url_for(f"/v2/{self._path(repository)}/blobs/uploads/{query}")
        response = self._send("POST", start)
        self._check(response, f"starting an upload to {repository}", 201, 202)
        if response.status_code == 201:
            return "mounted" if mount_from else "present"
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.name}: upload to {repository} started without a Location")
        url = urljoin(str(response.url), location)
        url += ("&" if "?" in url else "?") + f"digest={descriptor.digest}"
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(descriptor.size),
        }
        with source() as chunks:
            response = self._send("PUT", url, headers=headers, content=chunks)
        self._check(response, f"uploading {descriptor.digest} to {repository}", 201)
        return "uploaded"

    def start_upload(self, repository: str) -> str:
        """Open an upload session (what a push starts with); its absolute URL."""
        response = self._send("POST", self.url_for(f"/v2/{self._path(repository)}/blobs/uploads/"))
        self._check(response, f"starting an upload to {repository}", 202)
        location: str = response.headers.get("Location", "")
        return urljoin(str(response.url), location)

    def finish_upload(self, url: str, repository: str, content: bytes = b"") -> str:
        """Complete the upload session at `url` with `content`, in one `PUT <url>&digest=`
        (which needs only push, where cancelling a session needs delete); the digest."""
        digest = _digest.compute(content)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        headers = {"Content-Type": "application/octet-stream"}
        response = self._send("PUT", url, headers=headers, content=content)
        self._check(response, f"uploading {digest} to {repository}", 201)
        return digest

    def storage_host(self, repository: str, descriptor: Descriptor) -> str | None:
        """The host a blob download is redirected to (a CDN or blob storage), if any."""
        url = self.url_for(f"/v2/{self._path(repository)}/blobs/{descriptor.digest}")
        request = self.http.build_request("GET", url)
        response = self.http.send(request, follow_redirects=False)
        response.close()
        if not response.is_redirect:
            return None
        return str(httpx.URL(response.headers["Location"]).host) or None


def _about(error: httpx.TransportError, request: httpx.Request) -> bool:
    """Whether `error` is about `request` itself (and not raised by its streamed body,
    which reads from another registry)."""
    try:
        return error.request is request
    except RuntimeError:  # an error raised with no request attached
        return True


def _is_stream(content: object) -> bool:
    return content is not None and not isinstance(content, bytes)


def _next_link(response: httpx.Response) -> str | None:
    for link in response.headers.get_list("Link"):
        for part in link.split(","):
            target, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return target.strip().strip("<>")
    return None


def _untrusted(exc: httpx.TransportError) -> bool:
    """The registry's certificate failed verification: asking again cannot change that."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and not str(cause):
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError) and "ssl" in text.lower():
        return f"TLS failed ({text})"
    return text


def _error(response: httpx.Response, registry: str, what: str) -> RegistryError:
    code, message = error_body(response)
    status = response.status_code
    detail = f" ({code}: {message})" if code else (f" ({message})" if message else "")
    if status == 401:
        return AuthenticationError(
            _refusal(response, registry, what, detail), status=status, code=code
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


def _refusal(response: httpx.Response, registry: str, what: str, detail: str) -> str:
    """Why a 401: no credentials, credentials refused, or a token without the right."""
    if IDENTITY not in response.extensions:
        return f"{registry} refused access to {what}: not authorized{detail}"
    who = response.extensions[IDENTITY]
    if who is None:
        return (
            f"{registry} refused access to {what}: not authorized{detail}; no credentials "
            "are configured for it (an identity or username in mirror.yaml, or docker login)"
        )
    challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
    if challenge.params.get("error") == "insufficient_scope":
        wanted = challenge.params.get("scope", "")
        return (
            f"{registry} refused {who} access to {what}: not authorized{detail}; the "
            f"credentials were accepted but do not allow {wanted or 'this'}: check the "
            "identity's role (acrPull to pull, acrPush to push)"
        )
    return f"{registry} refused the credentials of {who} for {what}: not authorized{detail}"


def _gist(text: str) -> str:
    """A body that is not the registry's JSON (an HTML error page of a proxy or a web
    server) as one line: its first 80 printable characters, tags and spacing dropped."""
    plain = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    printable = "".join(c for c in plain if c.isprintable())
    return printable[:80] + ("..." if len(printable) > 80 else "")


def error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body: Any = response.json()
    except ValueError:
        return None, _gist(response.text)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("code") or "") or None, str(first.get("message") or "")
    return None, ""

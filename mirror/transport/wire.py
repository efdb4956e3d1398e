"""HTTP/1.1 connections for httpx, written and read with the standard library's `http.client`.

httpx is mirror's HTTP client: requests, auth flows, redirects and responses are all
its own. This module is only the wire underneath, an `httpx.BaseTransport`: keep-alive
connections per origin, requests written by `http.client`, response bodies read by its
buffered reader straight into one reused buffer per response.

Why not httpx's default transport (httpcore over h11)? Registries send blobs of
hundreds of MiB, and h11 copies each received byte four times in Python before httpx
hands it on: streaming the 500 MiB of the benchmark's medium data set cost 1.3
CPU-seconds that way and 0.4 this way, and a HEAD 0.69 ms against 0.46 ms (see
docs/performance.md). Requests to go through a proxy (`HTTPS_PROXY`, `HTTP_PROXY`,
`ALL_PROXY`, minus `NO_PROXY`) are handed to httpx's own transport for that proxy.

A host can be given the address to dial for it (`addresses`, like curl's `--resolve`:
a private endpoint, split DNS, a test server under a real name): the connection goes
there, directly (never through a proxy), while TLS (SNI and the certificate check) and
the Host header keep the host name.

A connection carries another request only when the last one went out whole and its
response was read to the end without error; anything else (a body that failed, an
answer that came before the body was sent, a malformed or cut-short response) closes
it. Failures of the connection surface as httpx's exceptions; a failure of a
request's own streamed body surfaces unchanged.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import httpx

READ_SIZE = 256 * 1024  # bytes per chunk handed to httpx from a response body
Origin = tuple[str, str, int]
Phase = Literal["connect", "write", "read"]

_TIMEOUTS: dict[Phase, type[httpx.TimeoutException]] = {
    "connect": httpx.ConnectTimeout,
    "write": httpx.WriteTimeout,
    "read": httpx.ReadTimeout,
}
_FAILURES: dict[Phase, type[httpx.TransportError]] = {
    "connect": httpx.ConnectError,
    "write": httpx.WriteError,
    "read": httpx.ReadError,
}


class Transport(httpx.BaseTransport):
    """HTTP/1.1 over keep-alive connections, at most `keep` idle ones per origin.

    `verify` is the TLS context for https origins (certificates and host names are
    checked as it says). An idle connection is used again only within
    `keepalive_expiry` seconds and if the server has not closed it meanwhile.
    `proxies` maps schemes (and `no`) as `urllib.request.getproxies()` does; by
    default they come from the environment. `addresses` maps a (host, port) to the
    (address, port) dialled for it.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext,
        keep: int = 2,
        keepalive_expiry: float = 5.0,
        proxies: Mapping[str, str] | None = None,
        addresses: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    ) -> None:
        self._context = verify
        self._addresses = {
            (host.lower(), port): dial for (host, port), dial in (addresses or {}).items()
        }
        self._keep = keep
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, list[tuple[float, http.client.HTTPConnection]]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._proxies = dict(
            urllib.request.getproxies_environment() if proxies is None else proxies
        )
        self._via_proxy: dict[str, httpx.HTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = _origin(request.url)
        proxied = None if origin[1:] in self._addresses else self._proxy_for(request.url)
        if proxied is not None:
            return proxied.handle_request(request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        idle = self._idle_connection(origin)
        if idle is not None:
            try:
                return self._respond(origin, idle, request, timeouts)
            except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
                # The server closed the connection as the request went out. A body
                # held in memory is sent again on a new connection; a stream cannot be.
                if not isinstance(request.stream, httpx.ByteStream):
                    raise
        connection = self._connect(origin, request, timeouts)
        return self._respond(origin, connection, request, timeouts)

    def _respond(
        self,
        origin: Origin,
        connection: http.client.HTTPConnection,
        request: httpx.Request,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        try:
            response, reusable = _exchange(connection, request, timeouts)
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            response.status,
            headers=[
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in response.getheaders()
            ],
            stream=_Body(self, origin, connection, response, request, reusable=reusable),
            extensions={
                "http_version": b"HTTP/1.1" if response.version == 11 else b"HTTP/1.0",
                "reason_phrase": response.reason.encode("latin-1"),
            },
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [connection for pooled in self._idle.values() for _, connection in pooled]
            self._idle.clear()
            proxies, self._via_proxy = list(self._via_proxy.values()), {}
        for connection in idle:
            connection.close()
        for transport in proxies:
            transport.close()

    def _proxy_for(self, url: httpx.URL) -> httpx.HTTPTransport | None:
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy or _bypassed(url.raw_host.decode("ascii"), self._proxies.get("no", "")):
            return None
        with self._lock:
            if proxy not in self._via_proxy:
                self._via_proxy[proxy] = httpx.HTTPTransport(proxy=proxy, verify=self._context)
            return self._via_proxy[proxy]

    # -- the pool -------------------------------------------------------------

    def _idle_connection(self, origin: Origin) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        with self._lock:
            pooled = self._idle.get(origin, [])
            while pooled:
                since, connection = pooled.pop()
                if now - since < self._expiry and not _readable(connection):
                    return connection
                connection.close()
        return None

    def _connect(
        self, origin: Origin, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> http.client.HTTPConnection:
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        dial = self._addresses.get((host, port))
        with _translated("connect", request):
            if dial is None:
                connection.connect()  # sets TCP_NODELAY: small PUTs do not wait for delayed ACKs
            else:
                tls = self._context if scheme == "https" else None
                connection.sock = _dial(dial, host, timeout, tls)
        return connection

    def _release(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            pooled = self._idle.setdefault(origin, [])
            if not self._closed and len(pooled) < self._keep:
                pooled.append((time.monotonic(), connection))
                return
        connection.close()


class _Body(httpx.SyncByteStream):
    """A response body, read into one buffer. The connection goes back to the pool
    only when the body was read to its end without an error (or had none), and the
    request went out whole."""

    def __init__(
        self,
        transport: Transport,
        origin: Origin,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx.Request,
        *,
        reusable: bool,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection = connection
        self._response = response
        self._request = request
        self._reusable = reusable
        self._complete = response.length == 0  # HEAD, 204, 304: nothing to read
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        remaining = self._response.length  # None: chunked, or until the connection closes
        view = memoryview(bytearray(READ_SIZE if remaining is None else min(READ_SIZE, remaining)))
        with _translated("read", self._request):  # under the read timeout set for the head
            while count := self._response.readinto(view):
                yield bytes(view[:count])
            if self._response.length:  # http.client reports a short body as its end
                raise http.client.IncompleteRead(b"", self._response.length)
        self._complete = True

    def close(self) -> None:
        if self._released:
            return
        self._released = True
        reusable = self._reusable and self._complete and not self._response.will_close
        self._response.close()
        if reusable and self._connection.sock is not None:
            self._transport._release(self._origin, self._connection)
        else:
            self._connection.close()


class _BodyFailed(Exception):
    """What the request's own body raised (not the connection): passed on unchanged."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _exchange(
    connection: http.client.HTTPConnection,
    request: httpx.Request,
    timeouts: dict[str, float | None],
) -> tuple[http.client.HTTPResponse, bool]:
    """Write `request` on `connection`; the response (status and headers read) and
    whether the connection may carry another request after it."""
    chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
    failed: Exception | None = None
    try:
        with _translated("write", request):
            if connection.sock is not None:
                connection.sock.settimeout(timeouts.get("write"))
            connection.putrequest(
                request.method,
                request.url.raw_path.decode("ascii"),
                skip_host=True,
                skip_accept_encoding=True,
            )
            for name, value in request.headers.raw:
                connection.putheader(name, value)
            connection.endheaders(_request_body(request), encode_chunked=chunked)
    except _BodyFailed as body:
        failed = body.error
    except (httpx.WriteError, httpx.WriteTimeout):
        # A server may answer before it has read the whole body (a refused token, a
        # blob too large) and stop reading: that answer is what the caller needs. The
        # connection is out of step with it and is not used again.
        early = _early_response(connection, request, timeouts)
        if early is None:
            raise
        return early, False
    if failed is not None:
        raise failed  # outside the handler: the body's error, as it was raised
    return _response_head(connection, request, timeouts), True


def _request_body(request: httpx.Request) -> bytes | Iterator[bytes] | None:
    if isinstance(request.stream, httpx.ByteStream):
        return request.read() or None  # sent with the headers, in one write
    if isinstance(request.stream, httpx.SyncByteStream):
        declared = request.headers.get("Content-Length")
        return _checked(request.stream, int(declared) if declared else None, request)
    return None


def _checked(
    chunks: Iterable[bytes], declared: int | None, request: httpx.Request
) -> Iterator[bytes]:
    """A streamed body: exactly its declared length (more would reach the server as a
    second request), its own errors marked as such."""
    sent = 0
    for chunk in _marked(chunks):
        sent += len(chunk)
        if declared is not None and sent > declared:
            message = f"the request body is longer than its Content-Length ({declared})"
            raise _BodyFailed(httpx.LocalProtocolError(message, request=request))
        yield chunk
    if declared is not None and sent < declared:
        message = f"the request body ended after {sent} of its {declared} bytes"
        raise _BodyFailed(httpx.LocalProtocolError(message, request=request))


def _marked(chunks: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except Exception as error:
        raise _BodyFailed(error) from error


def _early_response(
    connection: http.client.HTTPConnection,
    request: httpx.Request,
    timeouts: dict[str, float | None],
) -> http.client.HTTPResponse | None:
    if not _readable(connection):
        return None  # nothing was answered: the write failure stands
    try:
        return _response_head(connection, request, timeouts)
    except httpx.TransportError:
        return None


def _response_head(
    connection: http.client.HTTPConnection,
    request: httpx.Request,
    timeouts: dict[str, float | None],
) -> http.client.HTTPResponse:
    with _translated("read", request):
        if connection.sock is not None:
            connection.sock.settimeout(timeouts.get("read"))
        response = connection.getresponse()  # skips "100 Continue" itself
        if 100 <= response.status < 200:  # nothing asked for another: out of step
            raise http.client.HTTPException(f"unexpected informational response {response.status}")
        return response


@contextmanager
def _translated(phase: Phase, request: httpx.Request) -> Iterator[None]:
    """`http.client` and socket errors as the httpx exceptions the callers expect."""
    try:
        yield
    except TimeoutError as exc:
        raise _TIMEOUTS[phase](str(exc) or "timed out", request=request) from exc
    except http.client.IncompleteRead as exc:
        message = f"the connection closed before the whole body arrived ({exc})"
        raise httpx.RemoteProtocolError(message, request=request) from exc
    except http.client.HTTPException as exc:  # includes RemoteDisconnected
        message = str(exc) or type(exc).__name__
        raise httpx.RemoteProtocolError(message, request=request) from exc
    except OSError as exc:  # includes ssl.SSLError
        raise _FAILURES[phase](str(exc) or type(exc).__name__, request=request) from exc
    except ValueError as exc:
        if phase == "write":  # the message would quote the header, which may be a secret
            message = "the request is not valid HTTP (a header or the URL)"
            raise httpx.LocalProtocolError(message, request=request) from None
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc  # a chunk size


def _dial(
    address: tuple[str, int], host: str, timeout: float | None, tls: ssl.SSLContext | None
) -> socket.socket:
    """A connection to `address` for `host`, as `connect()` makes one to `host` itself:
    TCP_NODELAY set, and with `tls` the handshake made for (and checked against) `host`."""
    sock = socket.create_connection(address, timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return tls.wrap_socket(sock, server_hostname=host) if tls is not None else sock
    except BaseException:
        sock.close()
        raise


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether `host` is excluded by NO_PROXY (names, `.domain` suffixes, or `*`)."""
    host = host.lower()
    for entry in no_proxy.lower().split(","):
        name = entry.strip().lstrip(".")
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _origin(url: httpx.URL) -> Origin:
    """Scheme, host as dialled (IDNA-encoded, as the Host header and TLS name), port."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.raw_host.decode("ascii"), port


def _readable(connection: http.client.HTTPConnection) -> bool:
    """Whether the server sent something (or closed). On an idle connection that means
    it must not carry another request; after a failed write, that an answer came."""
    socket = connection.sock
    if socket is None:
        return True
    poller = select.poll()
    poller.register(socket, select.POLLIN)
    return bool(poller.poll(0))

"""A real HTTP proxy in front of a real registry that injects the failures tests need.

A registry on loopback never answers 429, never cuts a body short and never
redirects blob downloads to a storage host; MCR and ACR do. `FaultProxy` forwards
every request to the registry unchanged unless a `Fault` matches it, and counts
what it saw. `StorageHost` stands in for the CDN / blob-storage host that registries
redirect blob downloads to: it serves blob bytes fetched from the registry and
records the headers it received (so a test can check Authorization was dropped).
"""

from __future__ import annotations

import http.client
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Fault:
    """Applies to requests whose method matches and whose path matches `path` (regex).

    `times` limits how often it fires (None: always). Exactly one effect applies:
    `status` (+ `headers`, `body`) answers without forwarding; `truncate_at` forwards
    but cuts the response body after that many bytes and closes the connection;
    `redirect` answers 307 to `redirect + path`; `drop` closes the connection at once.
    """

    path: str
    method: str = "GET"
    times: int | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncate_at: int | None = None
    redirect: str | None = None
    drop: bool = False
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if method != self.method or not re.search(self.path, path):
            return False
        return self.times is None or self.fired < self.times


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _dispatch(self) -> None:
        owner: Proxy = self.server.owner  # type: ignore[attr-defined]
        owner.handle(self)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch


class Proxy(ABC):
    """A threaded HTTP server on 127.0.0.1 calling `handle` for each request."""

    def __init__(self) -> None:
        # Bound to port 0: the kernel picks a free port, with no window in which another
        # server (another test running at the same time) could take it first.
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.port = int(self._server.server_address[1])
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @abstractmethod
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        """Answer one request (subclasses: forward, inject a fault, serve)."""


def read_body(request: BaseHTTPRequestHandler) -> bytes:
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def send(
    request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    if "Content-Length" not in headers:
        request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


def exchange(
    upstream: str, proxy_url: str, request: BaseHTTPRequestHandler, body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send `request` on to the registry at `upstream` (host:port): the status, the
    headers to answer with (addresses pointing back at the proxy; a HEAD keeps the
    registry's Content-Length, other answers get the payload's), and the payload."""
    connection = http.client.HTTPConnection(upstream, timeout=30)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers["Host"] = upstream
    try:
        connection.request(request.command, request.path, body=body or None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    out = [
        (k, v.replace(f"http://{upstream}", proxy_url))
        for k, v in response.getheaders()
        if k.lower() not in _HOP_BY_HOP
        and (k.lower() != "content-length" or request.command == "HEAD")
    ]
    return response.status, out, payload


class FaultProxy(Proxy):
    """Forwards to `upstream` (a registry URL), injecting `faults`."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = urlsplit(upstream)
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        method, path = request.command, request.path
        with self._lock:
            self.seen.append((method, path, dict(request.headers)))
        body = read_body(request)
        fault = self._fault_for(method, path)
        if fault is not None and fault.drop:
            request.close_connection = True
            request.wfile.flush()
            request.connection.close()
            return
        if fault is not None and fault.status is not None:
            send(request, fault.status, fault.headers, fault.body)
            return
        if fault is not None and fault.redirect is not None:
            send(request, 307, {"Location": fault.redirect + path}, b"")
            return
        self._forward(request, method, path, body, fault.truncate_at if fault else None)

    def _forward(
        self,
        request: BaseHTTPRequestHandler,
        method: str,
        path: str,
        body: bytes,
        truncate_at: int | None,
    ) -> None:
        status, answer, payload = exchange(self.upstream.netloc, self.url, request, body)
        out = dict(answer)
        if truncate_at is None:
            send(request, status, out, payload)
            return
        out["Content-Length"] = str(len(payload))
        request.send_response(status)
        for name, value in out.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload[:truncate_at])
        request.wfile.flush()
        request.close_connection = True
        request.connection.close()


class StorageHost(Proxy):
    """Serves `/v2/<repo>/blobs/<digest>` by fetching from `registry`; records headers."""

    def __init__(self, registry: str, fetch: Callable[[str], bytes] | None = None) -> None:
        super().__init__()
        self.registry = registry
        self.requests: list[dict[str, str]] = []

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        self.requests.append(dict(request.headers))
        target = urlsplit(self.registry)
        connection = http.client.HTTPConnection(target.netloc, timeout=30)
        connection.request("GET", request.path)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        send(request, response.status, {"Content-Type": "application/octet-stream"}, payload)

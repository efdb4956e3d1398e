"""mirror's HTTP/1.1 wire under httpx (`mirror.transport.wire`), against real sockets.

The servers here are plain TCP servers on loopback that speak just enough HTTP/1.1 to
misbehave on purpose (close kept-alive connections, stall, send chunked or short
bodies); the registry-level behaviour is covered against docker-registry elsewhere.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from mirror.transport import wire
from mirror.transport.http import http_client

Serve = Callable[["ScriptedServer", socket.socket, int], None]  # (server, connection, its number)


class ScriptedServer:
    """Accepts connections on 127.0.0.1 and hands each to `serve` in its own thread."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            number = self.connections
            self.connections += 1
            threading.Thread(target=self._run, args=(connection, number), daemon=True).start()

    def _run(self, connection: socket.socket, number: int) -> None:
        # ConnectionError: the client hung up mid-answer, as some tests make it.
        with connection, contextlib.suppress(ConnectionError):
            self.serve(self, connection, number)

    def read_request(self, connection: socket.socket) -> bytes:
        """The request head and body (by Content-Length); b"" once the client closed."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += connection.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        return head

    def close(self) -> None:
        self.listener.close()


def answer(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def answering(body: bytes = b"{}", extra: bytes = b"") -> Serve:
    """A well-behaved server: every request on a connection gets `answer(body, extra)`."""

    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        while server.read_request(connection):
            connection.sendall(answer(body, extra))

    return serve


@pytest.fixture
def scripted() -> Iterator[Callable[[Serve], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(serve: Serve) -> ScriptedServer:
        servers.append(ScriptedServer(serve))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_requests_share_one_kept_alive_connection(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    server = scripted(answering(b"x" * 1000))
    with http_client() as client:
        for _ in range(5):
            assert client.get(f"{server.url}/v2/").content == b"x" * 1000
        assert client.head(f"{server.url}/v2/").status_code == 200
        assert client.get(f"{server.url}/v2/").status_code == 200
    assert server.connections == 1
    assert len(server.requests) == 7


def test_a_connection_the_server_closed_while_idle_is_not_used_again(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        connection.sendall(answer())  # keep-alive, then closes anyway

    server = scripted(serve)
    with http_client() as client:
        for _ in range(3):
            assert client.get(f"{server.url}/v2/").status_code == 200
    assert server.connections == 3


def test_a_request_in_memory_is_sent_again_when_the_server_drops_it(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    """The first connection answers one request, then takes the next and hangs up
    without answering: a race a client cannot see coming."""

    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        connection.sendall(answer())
        if number == 0:
            server.read_request(connection)  # and close without a response

    server = scripted(serve)
    with http_client() as client:
        assert client.get(f"{server.url}/v2/").status_code == 200
        response = client.put(f"{server.url}/v2/x/manifests/1.0", content=b'{"a": 1}')
        assert response.status_code == 200
    assert server.connections == 2
    assert server.requests[-1].endswith(b'{"a": 1}')


def test_a_streamed_body_is_not_sent_twice(scripted: Callable[[Serve], ScriptedServer]) -> None:
    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        connection.sendall(answer())
        if number == 0:
            server.read_request(connection)

    server = scripted(serve)
    with http_client() as client:
        assert client.get(f"{server.url}/v2/").status_code == 200
        stream = iter([b"abc", b"def"])
        with pytest.raises(httpx.RemoteProtocolError):
            client.put(f"{server.url}/upload", content=stream, headers={"Content-Length": "6"})
    assert server.connections == 1


def test_a_chunked_response_is_decoded(scripted: Callable[[Serve], ScriptedServer]) -> None:
    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )

    server = scripted(serve)
    with http_client() as client:
        assert client.get(f"{server.url}/v2/").content == b"hello world"


def test_a_body_cut_short_is_an_error_and_the_connection_is_dropped(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        if number == 0:
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
            return
        connection.sendall(answer())

    server = scripted(serve)
    with http_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="whole body"):
            client.get(f"{server.url}/blob")
        assert client.get(f"{server.url}/v2/").status_code == 200
    assert server.connections == 2


def test_a_response_left_unread_closes_its_connection(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    server = scripted(answering(b"y" * 2_000_000))
    with http_client() as client:
        with client.stream("GET", f"{server.url}/blob") as response:
            assert next(response.iter_raw()).startswith(b"y")
        assert client.get(f"{server.url}/v2/").status_code == 200
    assert server.connections == 2


def test_a_stalled_server_times_out(scripted: Callable[[Serve], ScriptedServer]) -> None:
    release = threading.Event()

    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        release.wait(10)

    server = scripted(serve)
    with http_client() as client, pytest.raises(httpx.ReadTimeout):
        client.get(f"{server.url}/v2/", timeout=httpx.Timeout(5.0, read=0.3))
    release.set()


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with http_client() as client, pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{port}/v2/")


def test_request_headers_and_body_arrive_as_sent(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    server = scripted(answering(b"", b"Docker-Content-Digest: sha256:abc\r\n"))
    with http_client() as client:
        response = client.put(
            f"{server.url}/v2/agent/manifests/1.5?x=1",
            content=b"manifest bytes",
            headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
        )
    assert response.headers["docker-content-digest"] == "sha256:abc"
    request = server.requests[0]
    assert request.startswith(b"PUT /v2/agent/manifests/1.5?x=1 HTTP/1.1\r\n")
    assert b"\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\n" in request
    assert b"\r\nContent-Length: 14\r\n" in request
    assert b"\r\nHost: 127.0.0.1:" in request
    assert request.endswith(b"\r\n\r\nmanifest bytes")


def test_a_chunked_body_cut_short_is_an_error(scripted: Callable[[Serve], ScriptedServer]) -> None:
    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")

    server = scripted(serve)
    with http_client() as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{server.url}/blob")


def test_an_answer_sent_before_the_body_was_read_is_returned(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    """The server refuses the upload from its headers alone and hangs up without reading
    the body (as a registry does with an expired token): the client gets the 401, not
    the broken pipe."""

    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += connection.recv(1024)
        connection.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        connection.shutdown(socket.SHUT_WR)
        time.sleep(0.2)  # then close with the body unread: the client's writes fail

    server = scripted(serve)
    body = iter([b"\0" * 1_000_000] * 32)
    with http_client() as client:
        response = client.put(
            f"{server.url}/v2/x/blobs/uploads/1",
            content=body,
            headers={"Content-Length": str(32_000_000)},
        )
    assert response.status_code == 401


def test_a_proxy_from_the_environment_is_used(
    scripted: Callable[[Serve], ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY still works: httpx routes proxied origins through its own transports."""

    server = scripted(answering())
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with http_client() as client:
        assert client.get("http://registry.example/v2/").status_code == 200
    assert server.requests[0].startswith(b"GET http://registry.example/v2/ HTTP/1.1\r\n")


def test_hosts_in_no_proxy_are_reached_directly(
    scripted: Callable[[Serve], ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted(answering())
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard: would fail if used
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with http_client() as client:
        assert client.get(f"{server.url}/v2/").status_code == 200
    assert server.requests[0].startswith(b"GET /v2/ HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("registry.example", "registry.example", True),
        ("myacr.azurecr.io", ".azurecr.io", True),
        ("myacr.azurecr.io", "azurecr.io", True),
        ("notazurecr.io", "azurecr.io", False),
        ("mcr.microsoft.com", "localhost, 127.0.0.1", False),
        ("anything", "*", True),
        ("anything", "", False),
    ],
)
def test_no_proxy_matches_names_and_domains(host: str, no_proxy: str, bypassed: bool) -> None:
    assert wire._bypassed(host, no_proxy) is bypassed


def test_an_error_of_the_body_itself_is_raised_unchanged(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    """A failing source (a local file, the other registry) is not the connection's
    fault: its own exception comes out, and the half-sent request's connection is
    dropped rather than pooled."""

    def source() -> Iterator[bytes]:
        yield b"abc"
        raise OSError(5, "input/output error reading the blob")

    server = scripted(answering())
    with http_client() as client:
        with pytest.raises(OSError, match="input/output error"):
            client.put(f"{server.url}/upload", content=source(), headers={"Content-Length": "6"})
        assert client.get(f"{server.url}/v2/").status_code == 200
    assert server.connections == 2


@pytest.mark.parametrize(("chunks", "message"), [([b"abc", b"defg"], "longer"), ([b"ab"], "ended")])
def test_a_streamed_body_must_match_its_content_length(
    scripted: Callable[[Serve], ScriptedServer], chunks: list[bytes], message: str
) -> None:
    server = scripted(answering())
    with http_client() as client, pytest.raises(httpx.LocalProtocolError, match=message):
        client.put(f"{server.url}/upload", content=iter(chunks), headers={"Content-Length": "6"})
    assert len(server.requests) <= 1  # nothing past the declared length became a request


def test_a_malformed_chunk_is_an_error_and_the_connection_is_dropped(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        if number == 0:
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nforged")
            server.read_request(connection)
            connection.sendall(answer(b"from the first connection"))
            return
        connection.sendall(answer(b"fresh"))

    server = scripted(serve)
    with http_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"{server.url}/blob")
        assert client.get(f"{server.url}/v2/").content == b"fresh"


def test_an_unasked_informational_response_is_an_error(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    def serve(server: ScriptedServer, connection: socket.socket, number: int) -> None:
        server.read_request(connection)
        connection.sendall(b"HTTP/1.1 103 Early Hints\r\n\r\n" + answer(b"late"))

    server = scripted(serve)
    with http_client() as client, pytest.raises(httpx.RemoteProtocolError, match="103"):
        client.get(f"{server.url}/v2/")


def test_an_invalid_header_is_refused_without_quoting_it(
    scripted: Callable[[Serve], ScriptedServer],
) -> None:
    server = scripted(lambda server, connection, number: None)
    with http_client() as client, pytest.raises(httpx.LocalProtocolError) as refused:
        client.get(f"{server.url}/v2/", headers={"Authorization": "Bearer s3cret\n"})
    assert "s3cret" not in str(refused.value)


def test_hosts_are_dialled_by_their_idna_name() -> None:
    """The name resolved and checked in TLS is the one the Host header and the token
    were made for (`xn--fa-hia.de`), not Python's older IDNA reading (`fass.de`)."""
    assert wire._origin(httpx.URL("https://faß.de/v2/")) == ("https", "xn--fa-hia.de", 443)


def test_a_host_given_an_address_is_dialled_there_and_named_in_the_host_header(
    scripted: Callable[[Serve], ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`registry.test`, which no resolver knows, reached at 127.0.0.1: directly, not
    through the proxy the environment names; other hosts are left alone."""
    server = scripted(answering())
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard: would fail if used
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    addresses = {("registry.test", 5000): ("127.0.0.1", server.port)}
    with http_client(addresses=addresses) as client:
        assert client.get("http://registry.test:5000/v2/").status_code == 200
        assert client.get("http://Registry.Test:5000/v2/x").status_code == 200
        with pytest.raises(httpx.ConnectError):
            client.get("http://registry.test:5001/v2/")  # another port: not mapped, proxied
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v2/ HTTP/1.1\r\n")
    assert b"\r\nHost: registry.test:5000\r\n" in server.requests[0]


def test_tls_to_a_host_given_an_address_is_checked_against_the_host_name(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The certificate is for `registry.test`: dialled at 127.0.0.1 under that name it is
    accepted (SNI and the host-name check use the name); under another name it is not."""
    from starlette.responses import JSONResponse

    from mirror.transport.tls import TrustOnFirstUse
    from tests.support.acr import certificate_for
    from tests.support.entra import BackgroundServer

    bundle, cert, key = certificate_for(tmp_path_factory.mktemp("tls"), "registry.test")
    server = BackgroundServer(JSONResponse({}), tls=(cert, key))
    server.start()
    try:
        context = TrustOnFirstUse.verifying(bundle)
        addresses = {
            ("registry.test", 443): ("127.0.0.1", server.port),
            ("other.test", 443): ("127.0.0.1", server.port),
        }
        with http_client(verify=context, addresses=addresses) as client:
            response = client.get("https://registry.test/v2/")
            assert (response.status_code, response.json()) == (200, {})
            with pytest.raises(httpx.ConnectError, match=r"other\.test"):
                client.get("https://other.test/v2/")
    finally:
        server.stop()

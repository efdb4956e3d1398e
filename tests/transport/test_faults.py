"""The fault suite: a sync through a proxy that misbehaves the way registries, CDNs and
networks do, one test per kind of fault.

Each test injects its fault (`tests/support/faults.py`'s `FaultProxy`, extended here
by `MisbehavingProxy` with the effects it lacks: a reset connection, corrupted bytes,
a stall, a slow drip, a callback half way through a body), shows that the sync rode
it out (it retried) or failed cleanly (a one-line reason, and every tag in the target
over complete content), and then verifies the target digest by digest against
upstream: every tag, every child manifest and every blob fetched back and hashed,
after a second sync without the fault where the first one failed.

The syncs run in-process (`mirror.engine.sync.sync`) with clients built here, so that
the timeouts can be short: `http_client`'s are 10 s to connect and 30 s to read, and a
timed-out request is tried once more; the clients here read with a 0.5 s timeout (set
on the `httpx.Client` that `http_client` returns).
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from mirror.engine.sync import SyncOutcome, sync
from mirror.errors import MirrorError
from mirror.governance.selection import select_all
from mirror.transport.auth import DistributionTokens, RegistryAuth
from mirror.transport.endpoint import Endpoint, RetryPolicy
from mirror.transport.http import http_client
from mirror.transport.layout import OciLayout
from mirror.transport.registry import RegistryClient
from mirror.transport.store import Store
from tests.support.faults import Fault, FaultProxy, exchange, read_body, send
from tests.support.images import (
    DOCKER_IMAGE,
    DOCKER_LIST,
    OCI_IMAGE,
    OCI_INDEX,
    PLATFORMS,
    Pushed,
    Seeder,
)
from tests.support.registry import Registry
from tests.support.reporting import Quiet
from tests.transport.conftest import FaultTally

REPO = "azureiotedge-agent"
OTHER_REPO = "azureiotedge-hub"
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_IMAGE, DOCKER_IMAGE])
LAYER_SIZE = 64 * 1024
READ_TIMEOUT = 0.5  # seconds: the clients' connect and read timeouts here
COPY_ATTEMPTS = 4  # the copy engine's own tries per blob (RetryPolicy's default)


# -- a proxy with more faults ----------------------------------------------------------


@dataclass
class Misbehaviour(Fault):
    """A `Fault` with the effects `FaultProxy` lacks (the response is the registry's):

    `reset_at`: after that many bytes of the body, the connection is reset (RST);
    `corrupt`: one byte of the body is changed (length and headers unchanged);
    `stall`: the request is read and never answered (until the proxy stops);
    `stall_after`: the answer's head and that many bytes of its body are sent, and
    then nothing (until the proxy stops);
    `drip`: the body is sent `drip[0]` bytes at a time, `drip[1]` seconds apart, and
    `midway` (if set) is called half way through.
    """

    reset_at: int | None = None
    corrupt: bool = False
    stall: bool = False
    stall_after: int | None = None
    drip: tuple[int, float] | None = None
    midway: Callable[[], None] | None = None


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class MisbehavingProxy(FaultProxy):
    """`FaultProxy` plus `Misbehaviour`s; records when each request arrived, and keeps
    a HEAD answer's Content-Length (mirror reads a manifest's size from it)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.arrived: list[tuple[float, str, str]] = []
        self.released = threading.Event()  # ends every stall
        # a client that gave up resets its connection: expected, not worth a traceback
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        # stop() waits for the server loop to notice: look every 50 ms, not every 0.5 s
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def stop(self) -> None:
        self.released.set()
        super().stop()

    def requests_to(self, method: str, fragment: str) -> list[float]:
        """When requests whose path contains `fragment` arrived."""
        return [at for at, m, path in self.arrived if m == method and fragment in path]

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        method, path = request.command, request.path
        with self._lock:
            self.seen.append((method, path, dict(request.headers)))
            self.arrived.append((time.monotonic(), method, path))
        body = read_body(request)
        fault = self._fault_for(method, path)
        if fault is None or not isinstance(fault, Misbehaviour):
            self._plain(request, fault, body)
        elif fault.stall:
            self.released.wait(60)
            _hang_up(request)
            return
        else:
            self._misbehave(request, fault, body)

    def _plain(self, request: BaseHTTPRequestHandler, fault: Fault | None, body: bytes) -> None:
        if fault is not None and fault.drop:
            _hang_up(request)
        elif fault is not None and fault.status is not None:
            send(request, fault.status, fault.headers, fault.body)
        elif fault is not None and fault.truncate_at is not None:
            status, headers, payload = exchange(self.upstream.netloc, self.url, request, body)
            _head(request, status, headers, len(payload))
            request.wfile.write(payload[: fault.truncate_at])
            _hang_up(request)
        else:
            status, headers, payload = exchange(self.upstream.netloc, self.url, request, body)
            _head(request, status, headers, len(payload))
            if request.command != "HEAD":
                request.wfile.write(payload)

    def _misbehave(self, request: BaseHTTPRequestHandler, fault: Misbehaviour, body: bytes) -> None:
        status, headers, payload = exchange(self.upstream.netloc, self.url, request, body)
        if fault.corrupt and payload:
            middle = len(payload) // 2
            payload = payload[:middle] + bytes([payload[middle] ^ 0xFF]) + payload[middle + 1 :]
        _head(request, status, headers, len(payload))
        if fault.stall_after is not None:
            request.wfile.write(payload[: fault.stall_after])
            request.wfile.flush()
            self.released.wait(60)
            _hang_up(request)
            return
        if fault.reset_at is not None:
            request.wfile.write(payload[: fault.reset_at])
            request.wfile.flush()
            request.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            _hang_up(request)
            return
        if fault.drip is None:
            request.wfile.write(payload)
            return
        size, interval = fault.drip
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
        for number, chunk in enumerate(chunks):
            if number == len(chunks) // 2 and fault.midway is not None:
                fault.midway()
            try:
                request.wfile.write(chunk)
                request.wfile.flush()
            except OSError:
                _hang_up(request)  # the client gave up on the transfer
                return
            time.sleep(interval)


def _head(
    request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], length: int
) -> None:
    request.send_response(status)
    for name, value in headers:
        request.send_header(name, value)
    if request.command != "HEAD":
        request.send_header("Content-Length", str(length))
    request.end_headers()


def _hang_up(request: BaseHTTPRequestHandler) -> None:
    request.close_connection = True
    request.connection.close()


@pytest.fixture
def source_proxy(upstream: Registry) -> Iterator[MisbehavingProxy]:
    proxy = MisbehavingProxy(upstream.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def target_proxy(target: Registry) -> Iterator[MisbehavingProxy]:
    proxy = MisbehavingProxy(target.url).start()
    yield proxy
    proxy.stop()


# -- upstream, syncs, and the target read back -----------------------------------------


@dataclass(frozen=True)
class Seeded:
    """Two releases (a Docker manifest list; an OCI index with attestations) and the
    rolling tag on the newer one."""

    old: Pushed
    new: Pushed
    sizes: Mapping[str, int]

    @property
    def tags(self) -> dict[str, str]:
        return {"1.5.0": self.old.digest, "1.5.1": self.new.digest, "1.5": self.new.digest}

    @property
    def old_layer(self) -> str:
        """The first app layer of 1.5.0: needed by 1.5.0 only."""
        return self.old.blobs[2]


@pytest.fixture
def seeded(seeder: Seeder) -> Seeded:
    platforms = PLATFORMS[:2]
    old = seeder.push_release(REPO, "1.5.0", layer_size=LAYER_SIZE, platforms=platforms)
    new = seeder.push_release(
        REPO, "1.5.1", oci=True, attestation=True, layer_size=LAYER_SIZE, platforms=platforms
    )
    seeder.tag(REPO, "1.5.1", "1.5")
    sizes = {
        blob: int(seeder.client.head(f"/v2/{REPO}/blobs/{blob}").headers["Content-Length"])
        for blob in {*old.blobs, *new.blobs}
    }
    return Seeded(old, new, sizes)


def registry_client(
    url: str, *, attempts: int = 4, max_delay: float = 2.0, push: bool = False
) -> RegistryClient:
    """mirror's client for `url`, reading with a `READ_TIMEOUT` timeout."""
    auth = RegistryAuth(DistributionTokens(), push=push)

    def factory() -> httpx.Client:
        client = http_client(auth=auth)
        client.timeout = httpx.Timeout(READ_TIMEOUT)
        return client

    retry = RetryPolicy(attempts=attempts, backoff=0.01, max_delay=max_delay)
    return RegistryClient(Endpoint.parse(url), factory, retry)


@dataclass
class Attempt:
    """How a sync ended: its outcome, or the error that ended it; and how long it took."""

    outcome: SyncOutcome | None
    error: MirrorError | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.outcome is not None and self.outcome.ok

    def reasons(self) -> str:
        if self.error is not None:
            return str(self.error)
        assert self.outcome is not None
        return " | ".join(f"{what}: {why}" for what, why in self.outcome.failures)


def attempt_sync(
    source_url: str, target: str | Path, *, attempts: int = 4, repos: Sequence[str] = (REPO,)
) -> Attempt:
    """One sync of `repos`, every tag, into a registry URL or a layout directory."""
    source = registry_client(source_url, attempts=attempts)
    store: Store = (
        OciLayout(target, create=True)
        if isinstance(target, Path)
        else registry_client(target, attempts=attempts, push=True)
    )
    started = time.monotonic()
    try:
        outcome = sync(source, store, repos, Quiet(), select=select_all, concurrency=4)
    except MirrorError as error:
        return Attempt(None, error, time.monotonic() - started)
    finally:
        source.close()
        store.close()
    return Attempt(outcome, None, time.monotonic() - started)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TargetContent:
    """The target read back without mirror's code: a registry with plain httpx, or a
    layout from its files."""

    def __init__(self, where: str | Path) -> None:
        self.where = where
        self.client = httpx.Client(timeout=10) if isinstance(where, str) else None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def tags(self) -> dict[str, str]:
        if self.client is None:
            assert isinstance(self.where, Path)
            index = self.where / "index.json"
            if not index.exists():
                return {}
            found = {}
            for entry in json.loads(index.read_bytes())["manifests"]:
                ref = entry["annotations"]["org.opencontainers.image.ref.name"]
                name, _, tag = ref.rpartition(":")
                if name == REPO:
                    found[tag] = entry["digest"]
            return found
        listing = self.client.get(f"{self.where}/v2/{REPO}/tags/list")
        if listing.status_code == 404:
            return {}
        found = {}
        for tag in listing.json().get("tags") or []:
            head = self.client.head(
                f"{self.where}/v2/{REPO}/manifests/{tag}", headers={"Accept": ACCEPT}
            )
            if head.status_code != 404:  # 404: listed while still being written
                found[str(tag)] = head.raise_for_status().headers["Docker-Content-Digest"]
        return found

    def get(self, kind: str, digest: str) -> bytes | None:
        if self.client is None:
            assert isinstance(self.where, Path)
            path = self.where / "blobs" / "sha256" / digest.partition(":")[2]
            return path.read_bytes() if path.exists() else None
        response = self.client.get(
            f"{self.where}/v2/{REPO}/{kind}/{digest}", headers={"Accept": ACCEPT}
        )
        return None if response.status_code == 404 else response.raise_for_status().content

    def missing(self, digest: str) -> list[str]:
        """What of manifest `digest` and all it references is not there byte for byte."""
        raw = self.get("manifests", digest)
        if raw is None or sha256(raw) != digest:
            return [f"manifest {digest} {'missing' if raw is None else 'holds other bytes'}"]
        document = json.loads(raw)
        problems = []
        for child in document.get("manifests") or []:
            problems += self.missing(child["digest"])
        for blob in ([document["config"]] if "config" in document else []) + (
            document.get("layers") or []
        ):
            data = self.get("blobs", blob["digest"])
            if data is None or sha256(data) != blob["digest"]:
                problems.append(f"blob {blob['digest']} {'missing' if data is None else 'corrupt'}")
        return problems

    def incomplete(self, expected: Mapping[str, str]) -> list[str]:
        """Tags over content that is not all there, or is not upstream's."""
        bad = []
        for tag, digest in sorted(self.tags().items()):
            if expected.get(tag) != digest:
                bad.append(f"{REPO}:{tag} -> {digest}: not upstream's")
            bad += [f"{REPO}:{tag}: {problem}" for problem in self.missing(digest)]
        return bad

    def differences(self, expected: Mapping[str, str]) -> list[str]:
        """Where the target is not upstream: tags, children, blobs."""
        tags = self.tags()
        found = [f"{REPO}:{tag}: not upstream's" for tag in sorted(set(tags) - set(expected))]
        for tag, digest in sorted(expected.items()):
            if tags.get(tag) != digest:
                found.append(f"{REPO}:{tag} is {tags.get(tag)}, upstream {digest}")
            else:
                found += [f"{REPO}:{tag}: {problem}" for problem in self.missing(digest)]
        return found


@contextmanager
def content_of(where: str | Path) -> Iterator[TargetContent]:
    content = TargetContent(where)
    try:
        yield content
    finally:
        content.close()


def assert_equals_upstream(where: str | Path, seeded: Seeded, tally: FaultTally) -> None:
    with content_of(where) as content:
        differences = content.differences(seeded.tags)
    tally.verified += 1
    tally.differing += bool(differences)
    assert not differences, differences


def assert_failed_cleanly(first: Attempt, where: str | Path, seeded: Seeded, *words: str) -> None:
    """The sync failed, saying why in one line per failure, with no tag over
    incomplete content left behind."""
    assert not first.ok, "the sync succeeded despite the fault"
    reasons = first.reasons()
    assert all("\n" not in why for why in reasons.split(" | ")), reasons
    assert all(word in reasons for word in words), reasons
    with content_of(where) as content:
        incomplete = content.incomplete(seeded.tags)
    assert not incomplete, incomplete


def then_a_sync_completes(
    upstream: Registry, where: str | Path, seeded: Seeded, tally: FaultTally
) -> None:
    again = attempt_sync(upstream.url, where)
    assert again.ok, again.reasons()
    assert_equals_upstream(where, seeded, tally)


# -- the faults ----------------------------------------------------------------------


def test_429_with_retry_after_is_waited_for_then_retried(
    target: Registry, seeded: Seeded, source_proxy: MisbehavingProxy, fault_tally: FaultTally
) -> None:
    layer = seeded.old_layer
    fault = source_proxy.add(
        Fault(rf"/blobs/{layer}$", status=429, headers={"Retry-After": "1"}, times=1)
    )
    done = attempt_sync(source_proxy.url, target.url)
    assert done.ok, done.reasons()
    first, second = source_proxy.requests_to("GET", f"/blobs/{layer}")
    assert second - first >= 0.9, "Retry-After: 1 was not waited for"
    fault_tally.record("429 with Retry-After", fault.fired, completed=True)
    assert_equals_upstream(target.url, seeded, fault_tally)


def test_429_without_retry_after_is_retried_with_backoff(
    target: Registry, seeded: Seeded, source_proxy: MisbehavingProxy, fault_tally: FaultTally
) -> None:
    index = source_proxy.add(Fault(r"/manifests/1\.5\.0$", status=429, times=2))
    blobs = source_proxy.add(Fault(r"/blobs/sha256:", status=429, times=3))
    done = attempt_sync(source_proxy.url, target.url)
    assert done.ok, done.reasons()
    assert len(source_proxy.requests_to("GET", "/manifests/1.5.0")) == 3
    fault_tally.record("429 without Retry-After", index.fired + blobs.fired, completed=True)
    assert_equals_upstream(target.url, seeded, fault_tally)


def test_a_storm_of_429s_within_the_retry_budget_is_ridden_out(
    target: Registry, seeded: Seeded, source_proxy: MisbehavingProxy, fault_tally: FaultTally
) -> None:
    """Five 429s in a row on the tag listing, with six tries per request."""
    storm = source_proxy.add(
        Fault(r"/tags/list", status=429, headers={"Retry-After": "0"}, times=5)
    )
    done = attempt_sync(source_proxy.url, target.url, attempts=6)
    assert done.ok, done.reasons()
    assert storm.fired == 5
    assert len(source_proxy.requests_to("GET", "/tags/list")) == 6
    fault_tally.record("429 storm within the retry budget", storm.fired, completed=True)
    assert_equals_upstream(target.url, seeded, fault_tally)


def test_a_storm_of_429s_beyond_the_retry_budget_fails_cleanly_then_the_next_sync_completes(
    upstream: Registry,
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    fault_tally: FaultTally,
) -> None:
    """Every GET of one layer is answered 429, for as long as the sync asks: that
    layer's tag fails, with the 429 as the reason; the other tags are copied."""
    layer = seeded.old_layer
    storm = source_proxy.add(Fault(rf"/blobs/{layer}$", status=429, headers={"Retry-After": "0"}))
    first = attempt_sync(source_proxy.url, target.url, attempts=3)
    assert_failed_cleanly(first, target.url, seeded, "429")
    assert storm.fired == 3 * COPY_ATTEMPTS, "each request tried 3 times, each copy 4 times"
    with content_of(target.url) as content:
        assert sorted(content.tags()) == ["1.5", "1.5.1"]
    fault_tally.record("429 storm beyond the retry budget", storm.fired, completed=False)
    then_a_sync_completes(upstream, target.url, seeded, fault_tally)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_answer_is_retried(
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    target_proxy: MisbehavingProxy,
    status: int,
    fault_tally: FaultTally,
) -> None:
    """On the source: twice on a layer, once on a child manifest; on the target: once
    on a manifest push."""
    faults = [
        source_proxy.add(Fault(rf"/blobs/{seeded.old_layer}$", status=status, times=2)),
        source_proxy.add(Fault(rf"/manifests/{seeded.old.children[0]}$", status=status, times=1)),
        target_proxy.add(Fault(r"/manifests/", method="PUT", status=status, times=1)),
    ]
    done = attempt_sync(source_proxy.url, target_proxy.url)
    assert done.ok, done.reasons()
    assert [fault.fired for fault in faults] == [2, 1, 1]
    fault_tally.record(f"HTTP {status}", sum(f.fired for f in faults), completed=True)
    assert_equals_upstream(target.url, seeded, fault_tally)


def test_a_registry_that_keeps_answering_503_is_given_up_on_then_the_next_sync_completes(
    upstream: Registry,
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    fault_tally: FaultTally,
) -> None:
    """Every blob GET answers 503: the circuit breaker stops the copy after a few
    failures in a row instead of every blob retrying on its own."""
    outage = source_proxy.add(Fault(r"/blobs/", status=503))
    first = attempt_sync(source_proxy.url, target.url)
    assert_failed_cleanly(first, target.url, seeded, "503")
    blobs = len({*seeded.old.blobs, *seeded.new.blobs})
    assert outage.fired < blobs * COPY_ATTEMPTS, "the breaker did not stop the retries"
    fault_tally.record("HTTP 503 outage", outage.fired, completed=False)
    then_a_sync_completes(upstream, target.url, seeded, fault_tally)


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "every time"])
def test_a_connection_reset_mid_blob_is_fetched_again_or_fails_naming_the_source(
    upstream: Registry,
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    persistent: bool,
    fault_tally: FaultTally,
) -> None:
    """The source resets the connection half way through a layer: once (the copy
    fetches it again), or every time (the copy fails cleanly, and the failure names
    the registry that reset, not the one the layer was being written to)."""
    layer = seeded.old_layer
    reset = source_proxy.add(
        Misbehaviour(
            rf"/blobs/{layer}$", reset_at=seeded.sizes[layer] // 2, times=None if persistent else 1
        )
    )
    first = attempt_sync(source_proxy.url, target.url)
    if not persistent:
        assert first.ok, first.reasons()
        assert len(source_proxy.requests_to("GET", f"/blobs/{layer}")) == 2
        fault_tally.record("connection reset mid-blob", reset.fired, completed=True)
        assert_equals_upstream(target.url, seeded, fault_tally)
        return
    assert_failed_cleanly(first, target.url, seeded)
    fault_tally.record("connection reset mid-blob, every time", reset.fired, completed=False)
    then_a_sync_completes(upstream, target.url, seeded, fault_tally)
    assert_names_the_culprit(
        first, culprit=("source", source_proxy.url), innocent=("target", target.url)
    )


def assert_names_the_culprit(
    first: Attempt, *, culprit: tuple[str, str], innocent: tuple[str, str]
) -> None:
    """The failure names the registry that misbehaved, not the other one.

    mirror bug: an error of the source's stream while it is uploaded to the target
    (wire.py passes a request body's own error on unchanged) is caught by the target
    client's `RegistryClient._send` as the target's transport error: it is reported
    as "cannot reach <target>" and counted by the target's circuit breaker.
    """
    reasons = first.reasons()
    (culprit_name, culprit_url), (innocent_name, innocent_url) = culprit, innocent
    assert culprit_url in reasons and f"cannot reach {innocent_url}" not in reasons, (
        f"mirror bug (RegistryClient._send): the failure blames the {innocent_name} "
        f"({innocent_url}) for what the {culprit_name} ({culprit_url}) did: {reasons}"
    )


@pytest.mark.parametrize("what", ["blob", "child manifest", "index"])
def test_a_truncated_body_is_fetched_again(
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    what: str,
    fault_tally: FaultTally,
) -> None:
    """The connection closes after 100 bytes of a body whose Content-Length is more."""
    path = {
        "blob": rf"/blobs/{seeded.old_layer}$",
        "child manifest": rf"/manifests/{seeded.old.children[0]}$",
        "index": r"/manifests/1\.5\.0$",
    }[what]
    truncated = source_proxy.add(Fault(path, truncate_at=100, times=1))
    done = attempt_sync(source_proxy.url, target.url)
    assert done.ok, done.reasons()
    assert truncated.fired == 1
    fault_tally.record(f"truncated {what}", truncated.fired, completed=True)
    assert_equals_upstream(target.url, seeded, fault_tally)


@pytest.mark.parametrize("kind", ["registry", "layout"])
def test_a_blob_whose_bytes_do_not_match_its_digest_never_lands_in_the_target(
    tmp_path: Path,
    upstream: Registry,
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    kind: str,
    fault_tally: FaultTally,
) -> None:
    """The source serves one layer with a byte changed, every time: the copy verifies
    each blob against its digest as it streams, so the layer never completes in the
    target (in a layout, mirror's check is the only one), and its tag is not written."""
    where: str | Path = target.url if kind == "registry" else tmp_path / "layout"
    layer = seeded.old_layer
    corrupt = source_proxy.add(Misbehaviour(rf"/blobs/{layer}$", corrupt=True))
    first = attempt_sync(source_proxy.url, where)
    assert_failed_cleanly(first, where, seeded, "digest mismatch")
    assert corrupt.fired == COPY_ATTEMPTS
    with content_of(where) as content:
        assert content.get("blobs", layer) is None
        assert "1.5.0" not in content.tags()
    if isinstance(where, Path):
        assert not list(where.rglob("*.partial")), "a temporary file was left behind"
    fault_tally.record("blob bytes not matching the digest", corrupt.fired, completed=False)
    then_a_sync_completes(upstream, where, seeded, fault_tally)


@pytest.mark.parametrize("what", ["child manifest", "index"])
def test_a_manifest_whose_bytes_do_not_match_its_digest_fails_its_tag_and_the_rest_is_copied(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    what: str,
    fault_tally: FaultTally,
) -> None:
    """A child manifest of azureiotedge-agent:1.5.0 (GET by digest), or its index (GET
    by tag, Docker-Content-Digest unchanged), answers with a byte changed, every time.

    The manifest is refused (it never reaches the target) and the next sync completes.
    As the README says of exit code 1 ("something failed; the rest was still copied"),
    the other tags of the repository and the other repository should still be copied,
    and the error should say where (repository, tag or digest, registry).
    """
    other = seeder.push_release(OTHER_REPO, "1.5.0", layer_size=LAYER_SIZE)
    path = {
        "child manifest": rf"/v2/{REPO}/manifests/{seeded.old.children[0]}$",
        "index": rf"/v2/{REPO}/manifests/1\.5\.0$",
    }[what]
    corrupt = source_proxy.add(Misbehaviour(path, corrupt=True))
    repos = (REPO, OTHER_REPO)
    first = attempt_sync(source_proxy.url, target.url, repos=repos)
    assert_failed_cleanly(first, target.url, seeded, "digest mismatch")
    with content_of(target.url) as content:
        copied = content.tags()
    assert "1.5.0" not in copied
    other_copied = target_seeder.digest_of(OTHER_REPO, "1.5.0") == other.digest
    if other_copied:
        assert all(target_seeder.has_manifest(OTHER_REPO, c) for c in other.children)
        assert all(target_seeder.has_blob(OTHER_REPO, b) for b in other.blobs)
    fault_tally.record(f"{what} bytes not matching the digest", corrupt.fired, completed=False)

    again = attempt_sync(upstream.url, target.url, repos=repos)
    assert again.ok, again.reasons()
    assert_equals_upstream(target.url, seeded, fault_tally)
    assert target_seeder.digest_of(OTHER_REPO, "1.5.0") == other.digest

    # mirror bug: one manifest that does not verify ends the whole run (fetch_manifests
    # and observe let DigestMismatch out of `sync`), so nothing else is copied, and
    # the error names neither the repository nor the registry.
    reasons = first.reasons()
    problems = []
    if sorted(copied) != ["1.5", "1.5.1"]:
        problems.append(f"{REPO}: only {sorted(copied)} of 1.5, 1.5.1 copied (not affected)")
    if not other_copied:
        problems.append(f"{OTHER_REPO}:1.5.0 was not copied (not affected)")
    if REPO not in reasons or "127.0.0.1" not in reasons:
        problems.append(f"the error does not say where: {reasons!r}")
    assert not problems, "mirror bug (fetch_manifests, observe): " + "; ".join(problems)


STALLS = [
    "every source request",
    "one source blob",
    "one source blob, after half its bytes",
    "every target request",
]


@pytest.mark.parametrize("where", STALLS)
def test_a_stalled_registry_fails_cleanly_within_the_timeouts(
    upstream: Registry,
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    target_proxy: MisbehavingProxy,
    where: str,
    fault_tally: FaultTally,
) -> None:
    """The connection is accepted and the request read, and nothing is ever answered.

    A request is given up after the read timeout and tried once more; each blob is
    copied at most `COPY_ATTEMPTS` times; so the run ends within about
    2 x `COPY_ATTEMPTS` read timeouts plus the copy's backoff (0.25 + 0.5 + 1 s, with
    jitter up to 1.5 times).
    """
    layer = seeded.old_layer
    proxy, other, stall = {
        "every source request": (source_proxy, target_proxy, Misbehaviour(r"/", stall=True)),
        "one source blob": (
            source_proxy,
            target_proxy,
            Misbehaviour(rf"/blobs/{layer}$", stall=True),
        ),
        "one source blob, after half its bytes": (
            source_proxy,
            target_proxy,
            Misbehaviour(rf"/blobs/{layer}$", stall_after=seeded.sizes[layer] // 2),
        ),
        "every target request": (target_proxy, source_proxy, Misbehaviour(r"/", stall=True)),
    }[where]
    proxy.add(stall)
    first = attempt_sync(source_proxy.url, target_proxy.url)
    bound = 2 * COPY_ATTEMPTS * READ_TIMEOUT + 1.75 * 1.5 + 4  # + slack for a busy machine
    assert first.seconds < bound, f"the stalled sync took {first.seconds:.1f} s"
    assert_failed_cleanly(first, target.url, seeded, "timed out")
    if where.startswith("one source blob"):
        with content_of(target.url) as content:
            assert sorted(content.tags()) == ["1.5", "1.5.1"]
    proxy.released.set()
    fault_tally.record(f"stall ({where})", stall.fired, completed=False)
    then_a_sync_completes(upstream, target.url, seeded, fault_tally)
    names = ("source", "target") if proxy is source_proxy else ("target", "source")
    assert_names_the_culprit(first, culprit=(names[0], proxy.url), innocent=(names[1], other.url))


def test_a_slow_drip_completes(
    target: Registry, seeded: Seeded, source_proxy: MisbehavingProxy, fault_tally: FaultTally
) -> None:
    """A layer arrives 4 KiB every 0.1 s: the whole transfer takes longer than the read
    timeout, each gap is shorter, so it completes."""
    layer = seeded.old_layer
    drip = source_proxy.add(Misbehaviour(rf"/blobs/{layer}$", drip=(4096, 0.1), times=1))
    done = attempt_sync(source_proxy.url, target.url)
    assert done.ok, done.reasons()
    assert len(source_proxy.requests_to("GET", f"/blobs/{layer}")) == 1, "the transfer restarted"
    dripping = (seeded.sizes[layer] // 4096 - 1) * 0.1
    assert done.seconds > dripping > 2 * READ_TIMEOUT
    fault_tally.record("slow drip", drip.fired, completed=True)
    assert_equals_upstream(target.url, seeded, fault_tally)


def test_a_target_restarted_mid_blob_is_resumed(
    upstream: Registry,
    target: Registry,
    seeded: Seeded,
    source_proxy: MisbehavingProxy,
    fault_tally: FaultTally,
) -> None:
    """The target registry is stopped and started again while a layer streams into it
    (the source drips it, so that the upload is in flight): the sync retries the
    upload and completes, or fails cleanly and the next sync completes."""
    layer = seeded.old_layer
    restarted = threading.Event()

    def restart() -> None:
        target.restart()
        restarted.set()

    drip = source_proxy.add(
        Misbehaviour(rf"/blobs/{layer}$", drip=(8192, 0.05), midway=restart, times=1)
    )
    first = attempt_sync(source_proxy.url, target.url)
    print(f"the sync across the restart: ok={first.ok} {first.reasons()}")
    assert restarted.is_set(), "the target was not restarted during the transfer"
    if first.ok:
        assert len(source_proxy.requests_to("GET", f"/blobs/{layer}")) == 2
        fault_tally.record("registry restart mid-blob", drip.fired, completed=True)
        assert_equals_upstream(target.url, seeded, fault_tally)
        return
    assert_failed_cleanly(first, target.url, seeded)
    fault_tally.record("registry restart mid-blob", drip.fired, completed=False)
    then_a_sync_completes(upstream, target.url, seeded, fault_tally)

"""The crash suite: `mirror sync` killed with SIGKILL at seeded points of a copy.

Each kill point is one `python -m mirror sync` process, killed at a point a seeded
random generator chose, into a registry (a real `docker-registry`), into Azure
Container Registry (the ACR stand-in, while it locks the specific tags) or into an
OCI image layout directory. After each kill:

- every tag the target holds points at content that is all there, checked digest by
  digest (the index, each child manifest, each config and layer: fetched and hashed);
- the ledger is intact and has no half-recorded run;
- the next `mirror sync` (same target, same ledger: the run lock of the killed process
  must be free) exits 0, and the target then equals upstream digest by digest: every
  tag, every child, every blob (and on ACR every specific tag is locked).

How the process is killed, at which point:

- by a proxy in front of the source (`KillProxy`) that sends part of a blob and then
  kills the process: the blob is being streamed into the target at that moment;
- by a proxy in front of the target registry, when a chosen request arrives (before it
  reaches the registry) or after the registry answered it (the registry stored the
  blob, child manifest or tag; the process never heard it);
- by a hook of the ACR stand-in, as the Nth lock request (PATCH) is answered;
- by the process itself (`SHIM`, a wrapper around `python -m mirror` that changes
  nothing else): at the Nth SQL statement of the ledger write, or just before a chosen
  file is renamed into place in the layout (a blob, a child manifest, an index, or
  `index.json` naming a tag). The kill is still `SIGKILL`; only its moment is exact.

The seed is printed, is in every assertion message, and replays a run:
`MIRROR_CRASH_SEED=<seed> pytest tests/engine/test_crashes.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Protocol

import httpx
import pytest
import yaml

from mirror.ledger import Ledger
from mirror.referrers import is_fallback_tag
from tests.engine.conftest import CrashTally
from tests.support.acr import OWNER, Identity, RequestRecord, TokenScope
from tests.support.acr_fixtures import AcrSetup
from tests.support.commands import ROOT, run_mirror
from tests.support.faults import FaultProxy, exchange, read_body
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

pytestmark = pytest.mark.registry

SEED = int(os.environ.get("MIRROR_CRASH_SEED") or time.time_ns() % 1_000_000_007)
REPOS = ("azureiotedge-agent", "azureiotedge-hub")
VERSIONS = ("1.5.0", "1.5.1", "1.5.2")  # 1.5.1 is an OCI index with attestations
ROLLING = "1.5"
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_IMAGE, DOCKER_IMAGE])
TWO_PLATFORMS = PLATFORMS[:2]  # linux/amd64 and linux/arm64: enough, and quicker
LAYER_SIZE = 64 * 1024
BASE_SIZE = 32 * 1024
WORKERS = 2  # kill points run two at a time (each has its own target, ledger and proxies)

# `python -c SHIM sync ...` is `python -m mirror sync ...`, plus, when MIRROR_CRASH_AT
# says so, a SIGKILL of the process by itself at an exact point:
#   sql:<STATEMENT PREFIX>:<n>  as the n-th SQL statement starting so begins (ledger)
#   rename:<suffix>:<n>         as the n-th rename onto a path ending so begins (layout)
SHIM = """
import os, runpy, signal, sys, threading

kind, _, rest = os.environ.get("MIRROR_CRASH_AT", "").partition(":")
pattern, _, nth = rest.rpartition(":")
count = 0
lock = threading.Lock()

def hit():
    global count
    with lock:
        count += 1
        if count == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)

if kind == "sql":
    import sqlite3
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        connection = connect(*args, **kwargs)

        def trace(statement):
            if " ".join(statement.split()).upper().startswith(pattern):
                hit()

        connection.set_trace_callback(trace)
        return connection

    sqlite3.connect = traced
elif kind == "rename":
    def hook(event, args):
        if event == "os.rename" and os.fsdecode(args[1]).endswith(pattern):
            hit()

    sys.addaudithook(hook)
sys.argv[0] = "mirror"
runpy.run_module("mirror", run_name="__main__", alter_sys=True)
"""


def ledger_statements(tags: int) -> list[tuple[str, int]]:
    """Statements of the ledger write of a run that wrote `tags` tags into a fresh
    ledger (its schema is created in the transaction that records the run), each with
    how many times it runs."""
    return [
        ("BEGIN IMMEDIATE", 1),
        ("CREATE TABLE IF NOT EXISTS MIRROR_RUNS", 1),
        ("ALTER TABLE MIRROR_RUNS", 2),
        ("INSERT INTO MIRROR_RUNS", 1),
        ("INSERT INTO MIRROR_OBSERVATIONS", tags),
        ("INSERT INTO MIRROR_WRITES", tags),
        ("COMMIT", 1),
    ]


def replay(what: str) -> str:
    return f"[crash seed {SEED}; replay: MIRROR_CRASH_SEED={SEED} pytest {__file__}] {what}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def short(digest: str) -> str:
    return digest.partition(":")[2][:12]


# -- upstream ------------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """The seeded source: every tag's digest, the child manifests and blob sizes."""

    registry: Registry
    releases: tuple[Pushed, ...]
    sizes: Mapping[str, int]

    @property
    def url(self) -> str:
        return self.registry.url

    @property
    def tags(self) -> dict[str, dict[str, str]]:
        tags: dict[str, dict[str, str]] = {repo: {} for repo in REPOS}
        for release in self.releases:
            tags[release.repository][release.tag] = release.digest
        for repo in REPOS:
            tags[repo][ROLLING] = tags[repo][VERSIONS[-1]]
        return tags

    def children(self) -> list[tuple[str, str]]:
        return [(r.repository, child) for r in self.releases for child in r.children]

    def indexes(self) -> list[tuple[str, str]]:
        return [(r.repository, r.digest) for r in self.releases]

    def blobs(self, *, at_least: int = 0) -> list[str]:
        found = {blob for release in self.releases for blob in release.blobs}
        return sorted(blob for blob in found if self.sizes[blob] >= at_least)


@pytest.fixture(scope="module")
def crash_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    registry = Registry(tmp_path_factory.mktemp("crash-upstream"), "upstream").start()
    seeder = Seeder(registry.url)
    try:
        releases = []
        for index, version in enumerate(VERSIONS):
            oci = index % 2 == 1
            for repo in REPOS:
                releases.append(
                    seeder.push_release(
                        repo,
                        version,
                        oci=oci,
                        attestation=oci,
                        layer_size=LAYER_SIZE,
                        base_size=BASE_SIZE,
                        platforms=TWO_PLATFORMS,
                    )
                )
        for repo in REPOS:
            seeder.tag(repo, VERSIONS[-1], ROLLING)
        sizes = {}
        for release in releases:
            for blob in release.blobs:
                head = seeder.client.head(f"/v2/{release.repository}/blobs/{blob}")
                sizes[blob] = int(head.headers["Content-Length"])
        upstream = Upstream(registry, tuple(releases), sizes)
    finally:
        seeder.close()
    yield upstream
    registry.stop()


@pytest.fixture(scope="module")
def crash_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One target registry; each kill point writes under its own repository prefix."""
    registry = Registry(tmp_path_factory.mktemp("crash-target"), "target").start()
    yield registry
    registry.stop()


# -- reading a target digest by digest -----------------------------------------------


class Reader(Protocol):
    def tags(self, repository: str) -> dict[str, str]: ...

    def manifest(self, repository: str, digest: str) -> bytes | None: ...

    def blob(self, repository: str, digest: str) -> bytes | None: ...

    def close(self) -> None: ...


class RegistryReader:
    """A registry read with plain httpx (not mirror's client), under a prefix."""

    def __init__(self, url: str, prefix: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url, timeout=30, headers=headers)
        self.prefix = prefix

    def _name(self, repository: str) -> str:
        return f"{self.prefix}/{repository}" if self.prefix else repository

    def tags(self, repository: str) -> dict[str, str]:
        name = self._name(repository)
        listing = self.client.get(f"/v2/{name}/tags/list")
        if listing.status_code == 404:
            return {}
        listing.raise_for_status()
        found = {}
        for tag in listing.json().get("tags") or []:
            if is_fallback_tag(tag):  # a referrers list (provenance records), not an image
                continue
            head = self.client.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
            if head.status_code == 404:
                continue  # listed while the registry is still writing it: not a tag yet
            head.raise_for_status()
            found[str(tag)] = head.headers["Docker-Content-Digest"]
        return found

    def _get(self, path: str, accept: str | None = None) -> bytes | None:
        response = self.client.get(path, headers={"Accept": accept} if accept else {})
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.content

    def manifest(self, repository: str, digest: str) -> bytes | None:
        return self._get(f"/v2/{self._name(repository)}/manifests/{digest}", ACCEPT)

    def blob(self, repository: str, digest: str) -> bytes | None:
        return self._get(f"/v2/{self._name(repository)}/blobs/{digest}")

    def close(self) -> None:
        self.client.close()


class LayoutReader:
    """An OCI image layout read from its files (not with mirror's `OciLayout`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def tags(self, repository: str) -> dict[str, str]:
        path = self.root / "index.json"
        if not path.exists():
            return {}
        found = {}
        for entry in json.loads(path.read_bytes())["manifests"]:
            ref = entry.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
            name, _, tag = ref.rpartition(":")
            if name == repository:
                found[tag] = entry["digest"]
        return found

    def blob(self, repository: str, digest: str) -> bytes | None:
        path = self.root / "blobs" / "sha256" / digest.partition(":")[2]
        return path.read_bytes() if path.exists() else None

    manifest = blob

    def leftovers(self) -> list[Path]:
        """Temporary files of writes that never finished."""
        return sorted(self.root.rglob("*.partial"))

    def close(self) -> None:
        return None


def missing_content(
    reader: Reader, repository: str, digest: str, seen: set[tuple[str, str]]
) -> list[str]:
    """What of the manifest `digest` and everything it references is not in the target
    byte for byte (each manifest and blob fetched and hashed)."""
    if (repository, digest) in seen:
        return []
    seen.add((repository, digest))
    raw = reader.manifest(repository, digest)
    if raw is None:
        return [f"manifest {short(digest)} missing"]
    if sha256(raw) != digest:
        return [f"manifest {short(digest)} holds other bytes ({short(sha256(raw))})"]
    document = json.loads(raw)
    problems = []
    for child in document.get("manifests") or []:
        problems += missing_content(reader, repository, child["digest"], seen)
    blobs = ([document["config"]] if "config" in document else []) + (document.get("layers") or [])
    for blob in blobs:
        if (repository, blob["digest"]) in seen:
            continue
        seen.add((repository, blob["digest"]))
        data = reader.blob(repository, blob["digest"])
        if data is None:
            problems.append(f"blob {short(blob['digest'])} missing")
        elif sha256(data) != blob["digest"] or len(data) != blob["size"]:
            problems.append(f"blob {short(blob['digest'])} holds other bytes")
    return problems


def tags_over_incomplete_content(
    reader: Reader, expected: Mapping[str, Mapping[str, str]]
) -> tuple[int, list[str]]:
    """(tags checked, the tags whose content is not all there or is not upstream's)."""
    checked, bad = 0, []
    seen: set[tuple[str, str]] = set()
    for repo in expected:
        for tag, digest in sorted(reader.tags(repo).items()):
            checked += 1
            if expected[repo].get(tag) != digest:
                bad.append(f"{repo}:{tag} -> {short(digest)}, not upstream's")
                continue
            problems = missing_content(reader, repo, digest, seen)
            if problems:
                bad.append(f"{repo}:{tag} -> {short(digest)}: {'; '.join(problems)}")
    return checked, bad


def differences(reader: Reader, expected: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Every tag, child manifest and blob in which the target differs from upstream."""
    found = []
    seen: set[tuple[str, str]] = set()
    for repo in expected:
        tags = reader.tags(repo)
        for tag in sorted(set(tags) - set(expected[repo])):
            found.append(f"{repo}:{tag} is in the target, not upstream")
        for tag, digest in sorted(expected[repo].items()):
            if tags.get(tag) != digest:
                found.append(f"{repo}:{tag} is {tags.get(tag)}, upstream {short(digest)}")
                continue
            found += [f"{repo}:{tag}: {p}" for p in missing_content(reader, repo, digest, seen)]
    return found


# -- killing -------------------------------------------------------------------------


class Victim:
    """The `mirror sync` process a trigger kills (known once it is started)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._started = threading.Event()
        self.killed = threading.Event()

    def started(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._started.set()

    def kill(self) -> None:
        if not self._started.wait(30) or self._process is None:
            raise RuntimeError("the process to kill was never started")
        self.killed.set()
        self._process.send_signal(signal.SIGKILL)


@dataclass(frozen=True)
class Trigger:
    """Kill at the first request matching `method` and `path` (a regex), `before` it is
    forwarded, `after` the registry answered it (the answer is never passed on), or
    `partial`ly: after passing on the answer's head and a `cut` of its body."""

    method: str
    path: str
    phase: str
    cut: float = 0.5


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class KillProxy(FaultProxy):
    """Forwards to a registry; SIGKILLs the victim at its `trigger` (once).

    Unlike `FaultProxy`, a HEAD answer keeps the registry's Content-Length (mirror
    reads a manifest's size from it).
    """

    def __init__(self, upstream: str, victim: Victim) -> None:
        super().__init__(upstream)
        self.victim = victim
        self.trigger: Trigger | None = None
        self._trigger_lock = threading.Lock()
        self._busy = 0  # requests being handled
        # the killed process's connections reset: expected, not worth a traceback
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        # stop() waits for the server loop to notice: look every 50 ms, not every 0.5 s
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _take(self, method: str, path: str) -> Trigger | None:
        with self._trigger_lock:
            trigger = self.trigger
            if trigger is None or method != trigger.method or not re.search(trigger.path, path):
                return None
            self.trigger = None
            return trigger

    def settle(self) -> None:
        """Wait until the requests of the killed process have been forwarded."""
        deadline = time.monotonic() + 10
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.01)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        with self._trigger_lock:
            self._busy += 1
        try:
            self._handle(request)
        finally:
            with self._trigger_lock:
                self._busy -= 1

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = read_body(request)
        if len(body) < int(request.headers.get("Content-Length") or 0):
            request.close_connection = True  # the process died while sending it
            return
        trigger = self._take(request.command, request.path)
        if trigger is None:
            self._answer(request, *exchange(self.upstream.netloc, self.url, request, body))
            return
        if trigger.phase == "before":
            self.victim.kill()
        else:
            status, headers, payload = exchange(self.upstream.netloc, self.url, request, body)
            if trigger.phase == "partial":
                request.send_response(status)
                for name, value in headers:
                    request.send_header(name, value)
                request.send_header("Content-Length", str(len(payload)))
                request.end_headers()
                request.wfile.write(payload[: int(len(payload) * trigger.cut)])
                request.wfile.flush()
                time.sleep(0.1)  # the process passes what it got on to the target
            self.victim.kill()
        request.close_connection = True
        request.connection.close()

    def _answer(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        headers: list[tuple[str, str]],
        payload: bytes,
    ) -> None:
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        if request.command != "HEAD":
            request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)


@contextmanager
def proxied(
    url: str, victim: Victim, trigger: Trigger | None
) -> Iterator[tuple[str, Callable[[], None]]]:
    """`url`, or with a `trigger`, the URL of a `KillProxy` in front of it; and a
    function that waits until the proxy has forwarded what it was sent."""
    if trigger is None:
        yield url, lambda: None
        return
    proxy = KillProxy(url, victim).start()
    proxy.trigger = trigger
    try:
        yield proxy.url, proxy.settle
    finally:
        proxy.stop()


@dataclass
class Point:
    """One kill point: what kind, where exactly, and how it is triggered."""

    kind: str  # stream, blob, child, index, tag, lock, ledger
    what: str
    source_trigger: Trigger | None = None  # on a proxy in front of the source
    target_trigger: Trigger | None = None  # on a proxy in front of the target registry
    crash_at: str | None = None  # the process kills itself (SHIM)
    lock_request: int | None = None  # the n-th ACR lock request
    concurrency: int = 8


@dataclass
class Outcome:
    """What one kill point found."""

    point: Point
    tags_checked: int = 0
    incomplete: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # anything else that went wrong
    leftovers: int = 0


@dataclass
class Place:
    """Where one kill point writes, and how to read it back."""

    workdir: Path
    target: str  # --target of both runs
    reader: Callable[[], Reader]
    source: str  # --source of the run that completes
    killed_source: str | None = None  # --source of the killed run (default: `source`)
    env: Mapping[str, str] = field(default_factory=dict)
    after: Callable[[Outcome], None] | None = None  # further checks after the next sync
    settle: Sequence[Callable[[], None]] = ()  # waits for proxies after the kill


def sync_args(
    source: str, target: str, ledger: Path, repos: Sequence[str], concurrency: int = 8
) -> list[str]:
    args = ["sync", "--source", source, "--target", target, "--all-tags"]
    args += ["--ledger", str(ledger), "--concurrency", str(concurrency)]
    for repo in repos:
        args += ["--repo", repo]
    return args


def tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def crash_then_resume(
    point: Point, place: Place, victim: Victim, expected: Mapping[str, Mapping[str, str]]
) -> Outcome:
    """Run the sync until it is killed at `point`; check the target and the ledger; run
    it again; check the target equals upstream."""
    outcome = Outcome(point)
    ledger = place.workdir / "ledger.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT), **place.env}
    if point.crash_at:
        env["MIRROR_CRASH_AT"] = point.crash_at
    repos = list(expected)
    killed_source = place.killed_source or place.source
    args = sync_args(killed_source, place.target, ledger, repos, point.concurrency)
    process = subprocess.Popen(
        [sys.executable, "-c", SHIM, *args],
        cwd=place.workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim.started(process)
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        outcome.errors.append(f"the sync did not end within 90 s: {tail(stderr)}")
        return outcome
    if process.returncode != -signal.SIGKILL:
        fired = " (its trigger fired)" if victim.killed.is_set() else ""
        outcome.errors.append(
            f"the kill point was not reached{fired}: the sync exited {process.returncode}: "
            f"{tail(stderr)}"
        )
        return outcome

    for settle in place.settle:
        settle()
    reader = place.reader()
    try:
        outcome.tags_checked, outcome.incomplete = tags_over_incomplete_content(reader, expected)
        if ledger.exists():
            raw = sqlite3.connect(ledger)
            try:
                integrity = raw.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                raw.close()
            if integrity != "ok":
                outcome.errors.append(f"the ledger is damaged after the kill: {integrity}")
            with Ledger.open(str(ledger)) as book:
                runs = [run.outcome for run in book.recent_runs()]
            if runs:
                outcome.errors.append(f"the killed run is recorded: {runs}")

        again = run_mirror(
            *sync_args(place.source, place.target, ledger, repos), cwd=place.workdir, env=place.env
        )
        if again.returncode != 0:
            outcome.errors.append(f"the next sync exited {again.returncode}: {tail(again.stderr)}")
        outcome.lost = differences(reader, expected)
        with Ledger.open(str(ledger)) as book:
            runs = [run.outcome for run in book.recent_runs()]
        if runs != ["completed"]:
            outcome.errors.append(f"the ledger holds runs {runs}, not one completed run")
        if isinstance(reader, LayoutReader):
            outcome.leftovers = len(reader.leftovers())
            if outcome.leftovers:
                outcome.errors.append(
                    f"{outcome.leftovers} temporary files of the killed run left after the next"
                )
        if place.after is not None:
            place.after(outcome)
    finally:
        reader.close()
    return outcome


def run_points(points: Sequence[Point], job: Callable[[int, Point], Outcome]) -> list[Outcome]:
    """`job(number, point)` for every point, `WORKERS` at a time. A point whose check
    itself broke (an exception) is an error of that point, reported with the others."""

    def guarded(numbered: tuple[int, Point]) -> Outcome:
        try:
            return job(*numbered)
        except Exception:
            outcome = Outcome(numbered[1])
            outcome.errors.append(f"the check broke: {traceback.format_exc()}")
            return outcome

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="crash") as pool:
        return list(pool.map(guarded, enumerate(points)))


def tally_and_check(tally: CrashTally, outcomes: Sequence[Outcome], started: float) -> None:
    tally.seed = SEED
    tally.seconds += time.monotonic() - started
    for outcome in outcomes:
        tally.points += 1
        tally.kinds[outcome.point.kind] += 1
        tally.tags_checked += outcome.tags_checked
        tally.incomplete += len(outcome.incomplete)
        tally.lost += len(outcome.lost)
        tally.leftovers += outcome.leftovers
    failures = []
    for outcome in outcomes:
        where = f"{outcome.point.kind}: {outcome.point.what}"
        failures += [f"{where}: a tag over incomplete content: {bad}" for bad in outcome.incomplete]
        failures += [f"{where}: after the next sync: {lost}" for lost in outcome.lost]
        failures += [f"{where}: {error}" for error in outcome.errors]
    assert not failures, replay("\n".join(failures))
    assert sum(outcome.tags_checked for outcome in outcomes) > 0, replay(
        "no kill left any tag in a target: the points are all too early"
    )


def ledger_points(rng: random.Random, upstream: Upstream, count: int) -> list[Point]:
    points = []
    tags = sum(len(tags) for tags in upstream.tags.values())
    for statement, times in rng.sample(ledger_statements(tags), count):
        nth = rng.randint(1, times)
        what = f"at SQL statement {statement} #{nth} of the ledger write"
        points.append(Point("ledger", what, crash_at=f"sql:{statement}:{nth}"))
    return points


def stream_points(rng: random.Random, upstream: Upstream, count: int) -> list[Point]:
    points = []
    for blob in rng.sample(upstream.blobs(at_least=16 * 1024), count):
        cut = rng.uniform(0.05, 0.95)
        what = f"after {cut:.0%} of blob {short(blob)} ({upstream.sizes[blob]} bytes) was read"
        trigger = Trigger("GET", rf"/blobs/{blob}$", "partial", cut)
        points.append(Point("stream", what, source_trigger=trigger))
    return points


def started_seed(name: str) -> random.Random:
    print(f"crash seed {SEED} (replay: MIRROR_CRASH_SEED={SEED}); {name}")
    return random.Random(f"{SEED}/{name}")


# -- the tests -----------------------------------------------------------------------


def test_a_sync_into_a_registry_killed_anywhere_leaves_complete_tags_and_resumes(
    tmp_path: Path, crash_upstream: Upstream, crash_target: Registry, crash_tally: CrashTally
) -> None:
    started = time.monotonic()
    rng = started_seed("registry target")
    upstream = crash_upstream
    points = stream_points(rng, upstream, 3)
    blob = rng.choice(upstream.blobs())
    points.append(
        Point(
            "blob",
            f"after the target stored blob {short(blob)}, before it answered",
            target_trigger=Trigger("PUT", rf"/blobs/uploads/.*digest={blob}", "after"),
        )
    )
    for repo, child in rng.sample(upstream.children(), 2):
        phase = rng.choice(("before", "after"))
        points.append(
            Point(
                "child",
                f"{phase} the target got child manifest {repo}@{short(child)}",
                target_trigger=Trigger("PUT", rf"/{repo}/manifests/{child}$", phase),
            )
        )
    tags = [(repo, tag) for repo in REPOS for tag in sorted(upstream.tags[repo])]
    for repo, tag in rng.sample(tags, 2):
        points.append(
            Point(
                "index",
                f"as the index of {repo}:{tag} is pushed (its children are in), "
                "before the target got it",
                target_trigger=Trigger("PUT", rf"/{repo}/manifests/{re.escape(tag)}$", "before"),
            )
        )
    repo, tag = rng.choice(tags)
    points.append(
        Point(
            "tag",
            f"after the target stored {repo}:{tag}, before it answered (nothing recorded)",
            target_trigger=Trigger("PUT", rf"/{repo}/manifests/{re.escape(tag)}$", "after"),
        )
    )
    points += ledger_points(rng, upstream, 2)
    for point in points:
        point.concurrency = rng.choice((4, 8))

    def job(number: int, point: Point) -> Outcome:
        workdir = tmp_path / f"{number:02d}-{point.kind}"
        workdir.mkdir()
        prefix = f"crash-{number:02d}"
        victim = Victim()
        with (
            proxied(upstream.url, victim, point.source_trigger) as (source, source_settled),
            proxied(crash_target.url, victim, point.target_trigger) as (target, target_settled),
        ):
            place = Place(
                workdir,
                target=f"{target}/{prefix}",
                reader=lambda: RegistryReader(crash_target.url, prefix),
                source=upstream.url,
                killed_source=source,
                settle=(source_settled, target_settled),
            )
            return crash_then_resume(point, place, victim, upstream.tags)

    outcomes = run_points(points, job)
    tally_and_check(crash_tally, outcomes, started)


def test_a_sync_into_an_oci_layout_killed_anywhere_leaves_complete_tags_and_resumes(
    tmp_path: Path, crash_upstream: Upstream, crash_tally: CrashTally
) -> None:
    started = time.monotonic()
    rng = started_seed("OCI layout target")
    upstream = crash_upstream
    points = stream_points(rng, upstream, 3)
    blob = rng.choice(upstream.blobs(at_least=16 * 1024))
    points.append(
        Point(
            "blob",
            f"blob {short(blob)} written and synced, before its rename into blobs/",
            crash_at=f"rename:/{blob.partition(':')[2]}:1",
        )
    )
    for repo, child in rng.sample(upstream.children(), 2):
        points.append(
            Point(
                "child",
                f"before child manifest {repo}@{short(child)} is renamed into blobs/",
                crash_at=f"rename:/{child.partition(':')[2]}:1",
            )
        )
    repo, index = rng.choice(upstream.indexes())
    points.append(
        Point(
            "index",
            f"before the index {repo}@{short(index)} is renamed into blobs/ (its children are in)",
            crash_at=f"rename:/{index.partition(':')[2]}:1",
        )
    )
    tag_count = sum(len(tags) for tags in upstream.tags.values())
    for nth in sorted(rng.sample(range(1, tag_count + 1), 2)):
        points.append(
            Point(
                "tag",
                f"before index.json names tag #{nth} (its index is in blobs/)",
                crash_at=f"rename:/index.json:{nth}",
            )
        )
    points += ledger_points(rng, upstream, 2)
    for point in points:
        point.concurrency = rng.choice((4, 8))

    def job(number: int, point: Point) -> Outcome:
        workdir = tmp_path / f"{number:02d}-{point.kind}"
        workdir.mkdir()
        victim = Victim()
        store = workdir / "store"
        with proxied(upstream.url, victim, point.source_trigger) as (source, settled):
            place = Place(
                workdir,
                target=f"oci:{store}",
                reader=lambda: LayoutReader(store),
                source=upstream.url,
                killed_source=source,
                settle=(settled,),
            )
            return crash_then_resume(point, place, victim, upstream.tags)

    outcomes = run_points(points, job)
    tally_and_check(crash_tally, outcomes, started)


def test_a_sync_into_acr_killed_while_locking_leaves_complete_tags_and_locks_them_next_time(
    tmp_path: Path, crash_upstream: Upstream, acr: AcrSetup, crash_tally: CrashTally
) -> None:
    started = time.monotonic()
    rng = started_seed("ACR target, locking")
    upstream = crash_upstream
    service = acr.service
    repo = REPOS[0]  # one repository: locking is the same for each, and ACR is slow
    expected = {repo: upstream.tags[repo]}
    releases = [release for release in upstream.releases if release.repository == repo]
    # Each specific tag: a PATCH per child manifest, one for the index, one for the tag.
    patches = sum(len(release.children) + 2 for release in releases)
    points = [
        Point("lock", f"as lock request #{nth} of {patches} is answered", lock_request=nth)
        for nth in sorted(rng.sample(range(1, patches + 1), 3))
    ]
    for point in points:
        point.concurrency = rng.choice((4, 8))
    entra = acr.entra
    config = {
        "registries": {
            acr.name: {
                "acr": True,
                "push": {
                    "type": "service-principal",
                    "tenant_id": entra.tenant_id,
                    "client_id": acr.push.client_id,
                    "client_secret_env": "MIRROR_PUSH_SECRET",
                    "authority": entra.authority,
                    "ca_bundle": str(entra.ca_bundle),
                },
            }
        }
    }

    def reader_for(prefix: str) -> Callable[[], Reader]:
        scopes = [TokenScope("repository", f"{prefix}/{repo}", ("pull",))]
        token = service.access_token(
            Identity("service_principal", "verifier", frozenset({OWNER})), scopes
        )
        return lambda: RegistryReader(service.registry.url, prefix, token)

    def all_locked(prefix: str) -> Callable[[Outcome], None]:
        def check(outcome: Outcome) -> None:
            for release in releases:
                name = f"{prefix}/{repo}"
                for reference in (release.tag, release.digest, *release.children):
                    if not service.attributes(name, reference).locked:
                        outcome.errors.append(f"{name}:{release.tag}: {reference} is not locked")

        return check

    def job(number: int, point: Point) -> Outcome:
        workdir = tmp_path / f"{number:02d}-{point.kind}"
        workdir.mkdir()
        (workdir / "mirror.yaml").write_text(yaml.safe_dump(config))
        prefix = f"crash-{number:02d}"
        victim = Victim()
        answered = 0

        def hook(record: RequestRecord) -> None:
            nonlocal answered
            if record.method == "PATCH" and record.path.startswith(f"/acr/v1/{prefix}/"):
                answered += 1
                if answered == point.lock_request:
                    victim.kill()

        service.hooks.append(hook)
        place = Place(
            workdir,
            target=f"{acr.url}/{prefix}",
            reader=reader_for(prefix),
            source=upstream.url,
            env={"MIRROR_PUSH_SECRET": acr.push.secret},
            after=all_locked(prefix),
        )
        try:
            outcome = crash_then_resume(point, place, victim, expected)
        finally:
            service.hooks.remove(hook)
        return outcome

    outcomes = run_points(points, job)
    tally_and_check(crash_tally, outcomes, started)

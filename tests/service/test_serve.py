"""`mirror serve` as a real process on loopback, against real registries: releases arrive
by webhook, by the release feed and as a rolling tag moving upstream; two replicas share
one PostgreSQL ledger; SIGTERM in the middle of a copy.

Stand-in: the IoT Edge release feed, a local HTTP server serving `product-versions.json`
with an ETag (it answers conditional GETs as aka.ms's target does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mirror.ledger import Ledger
from mirror.referrers import fallback_tag
from tests.support.commands import ROOT
from tests.support.images import Pushed, Seeder
from tests.support.postgres import PostgresServer
from tests.support.registry import Registry, free_port

pytestmark = pytest.mark.registry

AGENT, HUB = "azureiotedge-agent", "azureiotedge-hub"
REPOS = (AGENT, HUB)
SECRET = "It's a Secret to Everybody"
SYNC_TOKEN = "sync-token-for-tests"
ALLOWED = "Azure/azure-iotedge"


# --- the release feed stand-in -------------------------------------------------------


def feed_document(versions: dict[str, list[str]], other: str = "1.0.0") -> dict[str, Any]:
    """A `product-versions.json` listing, per line, the agent and hub image versions,
    plus another product (the metrics collector) at `other`."""
    products = [
        {
            "id": "aziot-edge",
            "name": "Azure IoT Edge",
            "version": version,
            "components": [
                {"name": repo, "type": "dockerImage", "version": version} for repo in REPOS
            ],
        }
        for line_versions in versions.values()
        for version in line_versions
    ]
    products.append(
        {
            "id": "metrics-collector",
            "name": "Metrics collector",
            "version": other,
            "components": [
                {"name": "azureiotedge-metrics-collector", "type": "dockerImage", "version": other}
            ],
        }
    )
    return {"schemaVersion": "1.0", "channels": [{"name": "stable", "products": products}]}


class FeedStandIn:
    """`GET /feed.json`: the current document, with an ETag; `304` to If-None-Match."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document).encode()
        self.requests: list[str | None] = []  # the If-None-Match of each request
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                etag = '"' + hashlib.sha256(stand_in.body).hexdigest()[:16] + '"'
                asked = self.headers.get("If-None-Match")
                stand_in.requests.append(asked)
                if asked == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(stand_in.body)))
                self.end_headers()
                self.wfile.write(stand_in.body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.json"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def publish(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed() -> Iterator[FeedStandIn]:
    stand_in = FeedStandIn(feed_document({"1.5": ["1.5.1"]}))
    yield stand_in
    stand_in.close()


# --- a served mirror -----------------------------------------------------------------


@dataclass
class Served:
    """One `mirror serve` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    started: float = field(default_factory=time.monotonic)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **kwargs)

    def status(self) -> dict[str, Any]:
        answer = self.get("/status")
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document

    def runs(self) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.status()["last_runs"]
        return runs

    def wait_until(self, what: str, done: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mirror serve ended while waiting for {what}:\n{self.text()}")
            if done():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.text()}")

    def wait_runs(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """The runs, once `count` are recorded and none is under way."""

        def settled() -> bool:
            status = self.status()
            return status["current"] is None and len(status["last_runs"]) >= count

        self.wait_until(f"{count} runs", settled, timeout)
        return self.runs()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.get("/metrics").text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, name: str) -> list[str]:
        return [line for line in self.text().splitlines() if f"event={name} " in line + " "]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def write_config(directory: Path, settings: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "mirror.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **settings}))
    return path


def line_1_5(upstream: Registry, target: Registry, **service: Any) -> dict[str, Any]:
    """Settings that mirror line 1.5 from `upstream` to `target`, with `service_settings`."""
    return {
        "source": upstream.url,
        "target": target.url,
        "lines": ["1.5"],
        "service": service_settings(**service),
    }


def service_settings(**service: Any) -> dict[str, Any]:
    """A `service:` section with every trigger off unless asked for, the three webhooks
    on, and a schedule far away."""
    base: dict[str, Any] = {
        "run_at_start": True,
        "schedules": [{"every": "1d"}],
        "release_feed": {"enabled": False},
        "tag_watch": {"enabled": False},
        "grace_period": "10s",
        "webhooks": {
            "github": {"secret_env": "MIRROR_TEST_GITHUB_SECRET", "repositories": [ALLOWED]},
            "sync": {"token_env": "MIRROR_TEST_SYNC_TOKEN"},
        },
    }
    base.update(service)
    return base


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `mirror serve` with a config; every process is stopped after the test."""
    started: list[Served] = []

    def start(settings: dict[str, Any], name: str = "serve") -> Served:
        directory = tmp_path / name
        config = write_config(directory, settings)
        port = free_port()
        log = directory / "serve.log"
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "MIRROR_TEST_GITHUB_SECRET": SECRET,
            "MIRROR_TEST_SYNC_TOKEN": SYNC_TOKEN,
        }
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mirror",
                    "serve",
                    "--config",
                    str(config),
                    "--listen",
                    f"127.0.0.1:{port}",
                ],
                cwd=directory,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        served = Served(process, f"http://127.0.0.1:{port}", log)
        started.append(served)
        served.wait_until("/healthz", lambda: _alive(served), timeout=30)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()


def _alive(served: Served) -> bool:
    try:
        return served.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


# --- seeding and checking registries -------------------------------------------------


def release(seeder: Seeder, version: str, **kwargs: Any) -> list[Pushed]:
    """Push `version` of both repositories and move its line's rolling tag to it."""
    line = ".".join(version.split(".")[:2])
    pushed = []
    for repo in REPOS:
        pushed.append(seeder.push_release(repo, version, **kwargs))
        seeder.tag(repo, version, line)
    return pushed


def same_in_target(seeder: Seeder, target_seeder: Seeder, *tags: str) -> bool:
    return all(
        target_seeder.digest_of(repo, tag) == seeder.digest_of(repo, tag)
        for repo in REPOS
        for tag in tags
    )


def manifest_reads(registry: Registry, mark: int) -> set[str]:
    """The tags and digests whose manifests the registry was asked for since `mark`."""
    return {
        r.path.rsplit("/manifests/", 1)[1]
        for r in registry.requests_since(mark)
        if "/manifests/" in r.path and r.method in ("HEAD", "GET")
    }


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def release_event(tag: str, *, repository: str = ALLOWED, draft: bool = False) -> bytes:
    return json.dumps(
        {
            "action": "published",
            "release": {"tag_name": tag, "draft": draft, "prerelease": False},
            "repository": {"full_name": repository},
        }
    ).encode()


def hook(served: Served, body: bytes, delivery: str, signature: str | None) -> httpx.Response:
    headers = {"X-GitHub-Event": "release", "X-GitHub-Delivery": delivery}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return served.post("/hooks/github", content=body, headers=headers)


# --- the tests -----------------------------------------------------------------------


def test_a_signed_release_webhook_mirrors_that_release_once(
    serve: Callable[..., Served],
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
) -> None:
    for version in ("1.5.0", "1.5.1"):
        release(seeder, version)
    settings = line_1_5(upstream, target, max_body_bytes=4096)
    served = serve(settings)
    served.wait_runs(1)
    assert same_in_target(seeder, target_seeder, "1.5.0", "1.5.1", "1.5")

    release(seeder, "1.5.2")
    mark = len(upstream.requests())
    body = release_event("1.5.2")
    delivery = str(uuid.uuid4())
    accepted = hook(served, body, delivery, signed(body))
    assert accepted.status_code == 202, accepted.text
    runs = served.wait_runs(2)
    assert same_in_target(seeder, target_seeder, "1.5.2", "1.5")
    assert [run["trigger"] for run in runs] == ["github-webhook", "start"]
    assert runs[0]["outcome"] == "completed"
    assert runs[0]["written"] == 4  # 1.5.2 and 1.5, in two repositories
    released = [seeder.digest_of(repo, "1.5.2") for repo in (AGENT, HUB)]
    assert manifest_reads(upstream, mark) <= {"1.5.2", "1.5"} | _digests(upstream, mark, *released)

    # Refused or ignored, and no sync for any of them.
    refusals = [
        (hook(served, body, delivery, signed(body)), 200),  # the same delivery again
        (hook(served, body, str(uuid.uuid4()), signed(body, "wrong")), 401),
        (hook(served, body, str(uuid.uuid4()), None), 401),
        (hook(served, b"{" + b" " * 8000 + b"}", str(uuid.uuid4()), signed(b"x")), 413),
    ]
    foreign = release_event("1.5.2", repository="someone/else")
    refusals.append((hook(served, foreign, str(uuid.uuid4()), signed(foreign)), 403))
    draft = release_event("1.5.3", draft=True)
    refusals.append((hook(served, draft, str(uuid.uuid4()), signed(draft)), 200))
    assert [answer.status_code for answer, _ in refusals] == [status for _, status in refusals]
    assert refusals[0][0].json() == {"duplicate": True}
    assert "ignored" in refusals[-1][0].json()
    for answer, status in refusals[1:5]:  # nothing that helps an attacker
        assert set(answer.json()) == {"error"}, (status, answer.text)
    time.sleep(1.5)
    assert len(served.runs()) == 2
    assert served.status()["waiting"] == []

    metrics = served.metrics()
    assert (
        metrics[("mirror_syncs_total", (("outcome", "completed"), ("trigger", "github-webhook")))]
        == 1
    )
    assert (
        metrics[("mirror_triggers_total", (("kind", "github-webhook"), ("result", "queued")))] == 1
    )
    assert (
        metrics[("mirror_triggers_total", (("kind", "github-webhook"), ("result", "duplicate")))]
        == 1
    )
    assert metrics[("mirror_tags_written_total", ())] == sum(
        run["written"] for run in served.runs()
    )
    records = {
        result: metrics[("mirror_provenance_records_total", (("result", result),))]
        for result in ("attached", "owed")
    }
    assert records == {"attached": metrics[("mirror_tags_written_total", ())], "owed": 0}
    for result in ("uploaded", "mounted", "present"):
        logged = len(served.events(f"blob.{result}"))
        assert metrics[("mirror_blobs_total", (("result", result),))] == logged, result
    latency = ("mirror_release_latency_seconds_count", (("trigger", "github-webhook"),))
    assert metrics[latency] == 1

    # No secret in anything the service said or kept: its log, its metrics, its status,
    # its page, its ledger.
    ledger = served.log.parents[1] / "state" / "mirror" / "ledger.sqlite"
    kept = [served.text(), served.get("/metrics").text, served.get("/status").text]
    kept += [served.get("/").text, ledger.read_bytes().decode("latin-1")]
    for secret in (SECRET, SYNC_TOKEN):
        assert not any(secret in text for text in kept), secret


def _digests(registry: Registry, mark: int, *tops: str | None) -> set[str]:
    """Manifests read by digest since `mark` (children of what was copied), and the
    referrers lists (`sha256-<hex>` tags) of those and of `tops`, the released indexes."""
    digests = {
        r.path.rsplit("/manifests/", 1)[1]
        for r in registry.requests_since(mark)
        if "/manifests/sha256:" in r.path
    }
    subjects = digests | {top for top in tops if top}
    return digests | {fallback_tag(digest) for digest in subjects}


def test_a_new_version_in_the_release_feed_syncs_just_that_release(
    serve: Callable[..., Served],
    feed: FeedStandIn,
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
) -> None:
    for version in ("1.4.0", "1.4.1", "1.5.0", "1.5.1"):
        release(seeder, version)
    feed.publish(feed_document({"1.4": ["1.4.1"], "1.5": ["1.5.1"]}))
    settings = {
        "source": upstream.url,
        "target": target.url,
        "service": service_settings(release_feed={"url": feed.url, "every": "1s"}),
    }
    served = serve(settings)
    served.wait_runs(1)
    assert same_in_target(seeder, target_seeder, "1.4.1", "1.4", "1.5.1", "1.5")
    served.wait_until("a conditional poll", lambda: any(feed.requests[1:]), timeout=10)

    # Another product's release changes the feed, and nothing is synced.
    feed.publish(feed_document({"1.4": ["1.4.1"], "1.5": ["1.5.1"]}, other="1.0.1"))
    time.sleep(2.5)
    assert len(served.runs()) == 1

    release(seeder, "1.5.2")
    mark = len(upstream.requests())
    feed.publish(feed_document({"1.4": ["1.4.1"], "1.5": ["1.5.2"]}, other="1.0.1"))
    served.wait_until(
        "1.5.2 mirrored", lambda: same_in_target(seeder, target_seeder, "1.5.2", "1.5")
    )
    runs = served.wait_runs(2)
    assert {run["trigger"] for run in runs[:-1]} == {"release-feed"}
    released = [seeder.digest_of(repo, "1.5.2") for repo in (AGENT, HUB)]
    read = manifest_reads(upstream, mark) - _digests(upstream, mark, *released)
    assert read == {"1.5.2", "1.5"}, read  # no other line's (or older) tags looked at


def test_a_rolling_tag_moved_upstream_syncs_within_one_watch_interval(
    serve: Callable[..., Served],
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
) -> None:
    release(seeder, "1.5.0")
    settings = line_1_5(upstream, target, tag_watch={"every": "1s"})
    served = serve(settings)
    served.wait_runs(1)
    served.wait_until("a first look at the rolling tags", lambda: bool(served.events("run.done")))
    time.sleep(1.2)  # the watch's baseline

    release(seeder, "1.5.1")
    moved = time.monotonic()
    served.wait_until(
        "1.5 moved in the target",
        lambda: same_in_target(seeder, target_seeder, "1.5.1", "1.5"),
        timeout=15,
    )
    assert time.monotonic() - moved < 1 + 5  # one interval, plus the run itself
    assert "tag-watch" in {run["trigger"] for run in served.wait_runs(2)}


def test_two_replicas_on_one_postgresql_ledger_run_one_sync_for_one_trigger(
    serve: Callable[..., Served],
    postgres: PostgresServer,
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
) -> None:
    release(seeder, "1.5.0")
    ledger = postgres.create_database()
    settings = line_1_5(upstream, target, run_at_start=False) | {"ledger": ledger}
    replicas = [serve(settings, "one"), serve(settings, "two")]
    body = release_event("1.5.0")
    delivery = str(uuid.uuid4())
    answers: list[int] = []

    def deliver(served: Served) -> None:
        answers.append(hook(served, body, delivery, signed(body)).status_code)

    threads = [threading.Thread(target=deliver, args=(served,)) for served in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 202]
    replicas[0].wait_until(
        "1.5.0 mirrored", lambda: same_in_target(seeder, target_seeder, "1.5.0", "1.5")
    )
    time.sleep(POLL_SECONDS + 1)  # both workers look at the shared queue again
    with Ledger.open(ledger) as book:
        runs = book.recent_runs()
    assert [run.triggered_by for run in runs] == ["github-webhook"]
    assert sum(len(served.events("run.done")) for served in replicas) == 1


POLL_SECONDS = 5.0


def test_sigterm_stops_a_copy_at_a_safe_point_and_the_next_run_completes(
    serve: Callable[..., Served],
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
) -> None:
    pushed = [
        p
        for version in ("1.5.0", "1.5.1", "1.5.2", "1.5.3")
        for p in release(seeder, version, layer_size=3 * 1024 * 1024)
    ]
    settings = line_1_5(upstream, target, grace_period="10s")
    served = serve(settings)
    served.wait_until(
        "blob uploads under way",
        lambda: (
            sum(r.method == "PUT" and "/blobs/uploads/" in r.path for r in target.requests()) >= 3
        ),
    )
    assert served.status()["current"] is not None, "the copy ended before it could be stopped"
    stopping = time.monotonic()
    assert served.stop(signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises it
    assert time.monotonic() - stopping < 10 + 3
    assert served.events("service.stop")

    for repo in REPOS:
        for tag in target_seeder.tags(repo):
            digest = target_seeder.digest_of(repo, tag)
            made = next(p for p in pushed if p.repository == repo and p.digest == digest)
            assert all(target_seeder.has_manifest(repo, child) for child in made.children), tag
            assert all(target_seeder.has_blob(repo, blob) for blob in made.blobs), tag
    with Ledger.open(str(served.log.parents[1] / "state" / "mirror" / "ledger.sqlite")) as book:
        assert [run.outcome for run in book.recent_runs()] == ["interrupted"]

    again = serve(settings, "again")
    runs = again.wait_runs(2)
    assert runs[0]["outcome"] == "completed", again.text()
    tags = ("1.5.0", "1.5.1", "1.5.2", "1.5.3", "1.5")
    assert same_in_target(seeder, target_seeder, *tags)


def test_verify_runs_on_its_schedule_and_reports_what_it_finds(
    serve: Callable[..., Served],
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
) -> None:
    release(seeder, "1.5.0")
    settings = line_1_5(upstream, target, verify={"every": "1s"})
    served = serve(settings)
    served.wait_runs(1)

    def verified(findings: int) -> Callable[[], bool]:
        def done() -> bool:
            last = served.status()["verification"]
            return bool(last) and last["tags"] == 4 and len(last["findings"]) == findings

        return done

    served.wait_until("a verification that finds all holds", verified(0))
    assert served.metrics()[("mirror_verify_tags", ())] == 4
    assert "all hold" in served.get("/").text

    moved = target_seeder.push_release(AGENT, "1.5.0", oci=True, salt="moved in the target")
    assert moved.digest != seeder.digest_of(AGENT, "1.5.0")
    served.wait_until("a verification that sees the moved tag", verified(3))
    findings = served.status()["verification"]["findings"]
    assert {(f["kind"], f["repository"], f["tag"]) for f in findings} == {
        (kind, AGENT, "1.5.0") for kind in ("tag", "upstream", "provenance")
    }  # moved away from what the ledger recorded, from upstream, and from its record
    assert served.metrics()[("mirror_verify_findings", (("kind", "tag"),))] == 1
    assert any("kind=tag" in line for line in served.events("verify.finding"))
    page = served.get("/").text
    assert "Last verification" in page and f"{AGENT}:1.5.0" in page

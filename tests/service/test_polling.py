"""The service's pollers against real HTTP servers on loopback: the release feed and
GitHub's releases (conditional GETs, a baseline first, backing off after a failure), the
upstream tag watch (an OCI layout as the source), and signed run notifications.

Stand-in: `StandIn`, a `ThreadingHTTPServer` in this process that serves one resource
with an ETag (304 to a matching If-None-Match) or an error status, and answers POSTs with
the statuses it is given; it records every request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirror.engine.job import Job
from mirror.governance.scope import Scope
from mirror.governance.versions import Line, Version
from mirror.manifest import OCI_MANIFEST, Manifest
from mirror.service.feed import FeedWatcher
from mirror.service.github import GithubPoller, release_version
from mirror.service.notify import Notifier, Receiver
from mirror.service.polling import Backoff, Conditional, poller_client
from mirror.service.triggers import GITHUB_RELEASES, RELEASE_FEED, TAG_WATCH, Trigger
from mirror.service.watch import TagWatcher
from mirror.settings.config import Config
from mirror.transport.layout import OciLayout
from tests.support.registry import free_port

AGENT, HUB = "azureiotedge-agent", "azureiotedge-hub"
REPOS = (AGENT, HUB)
COLLECTOR = "azureiotedge-metrics-collector"
GITHUB_REPO = "Azure/azure-iotedge"


# --- the stand-in server --------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request the stand-in answered."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int


@dataclass
class StandIn:
    """`GET` any path: the current body with an ETag and a Last-Modified (304 when
    If-None-Match matches), or `error` as the status. `POST`: the next of `answers`
    (then 200)."""

    body: bytes = b"{}"
    error: int | None = None
    answers: list[int] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                etag = stand_in.etag
                headers = {k.lower(): v for k, v in self.headers.items()}
                if stand_in.error is not None:
                    status, body, extra = stand_in.error, b"failing", {}
                elif headers.get("if-none-match") == etag:
                    status, body, extra = 304, b"", {"ETag": etag}
                else:
                    modified = "Fri, 04 Dec 2026 12:00:00 GMT"
                    status, body = 200, stand_in.body
                    extra = {"ETag": etag, "Last-Modified": modified}
                stand_in.seen.append(Seen("GET", self.path, headers, b"", status))
                self.answer(status, body, extra)

            def do_POST(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = self.rfile.read(int(headers.get("content-length", "0")))
                status = stand_in.answers.pop(0) if stand_in.answers else 200
                stand_in.seen.append(Seen("POST", self.path, headers, body, status))
                self.answer(status, b"", {})

            def answer(self, status: int, body: bytes, extra: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def publish(self, document: object) -> None:
        self.body = json.dumps(document).encode()

    def statuses(self) -> list[int]:
        return [seen.status for seen in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with poller_client() as client:
        yield client


@pytest.fixture(scope="module")
def job() -> Job:
    """The shipped policy with `lines: ["1.5"]`."""
    return Job(
        config=Config.model_validate({"lines": ["1.5"]}),
        source="oci:/nowhere",
        target="oci:/nowhere-else",
        repositories=REPOS,
        all_tags=False,
        concurrency=1,
    )


class Submitted(list[Trigger]):
    """`submit=`: remembers every trigger; answers `accept` (queued, or already queued)."""

    accept = True

    def __call__(self, trigger: Trigger) -> bool:
        self.append(trigger)
        return self.accept


@pytest.fixture
def submitted() -> Submitted:
    return Submitted()


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@pytest.fixture
def logged() -> Iterator[Captured]:
    """mirror's log events (the `mirror` logger may not propagate once configured)."""
    logger = logging.getLogger("mirror")
    handler, level = Captured(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def without_time(trigger: Trigger) -> tuple[str, str, Scope, str]:
    assert isinstance(trigger.seen, datetime)
    assert trigger.seen.tzinfo is not None
    return (trigger.kind, trigger.key, trigger.scope, trigger.detail)


# --- the release feed -------------------------------------------------------------------


def feed(
    agent: tuple[str, ...] = ("1.5.1",),
    hub: tuple[str, ...] = ("1.5.1",),
    collector: str = "1.0.0",
    channel: str = "stable",
) -> dict[str, Any]:
    """A `product-versions.json` (the shape of tests/data/governance/product-versions.json):
    one `aziot-edge` product per version, its images at that version, and the metrics
    collector."""
    products: list[dict[str, Any]] = []
    for version in sorted(set(agent) | set(hub)):
        components: list[dict[str, Any]] = [{"name": "aziot-edge", "version": version}]
        components += [
            {"name": repo, "type": "dockerImage", "repo": "Azure/iotedge", "version": version}
            for repo, versions in ((AGENT, agent), (HUB, hub))
            if version in versions
        ]
        products.append(
            {
                "name": "Azure IoT Edge",
                "id": "aziot-edge",
                "version": version,
                "components": components,
            }
        )
    products.append(
        {
            "name": "Metrics Collector",
            "id": "metrics-collector",
            "version": collector,
            "components": [{"name": COLLECTOR, "type": "dockerImage", "version": collector}],
        }
    )
    return {"schemaVersion": "1.0", "channels": [{"name": channel, "products": products}]}


def feed_watcher(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> FeedWatcher:
    url = f"{stand_in.url}/product-versions.json"
    return FeedWatcher(url, client, REPOS, job.selector, submitted, every=60.0)


def test_the_first_poll_is_a_baseline_and_an_unchanged_feed_costs_a_304(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> None:
    stand_in.publish(feed(agent=("1.5.1", "1.6.1"), hub=("1.5.1",)))
    watcher = feed_watcher(stand_in, client, job, submitted)
    assert watcher.poll() == []
    assert watcher.feed is not None
    assert watcher.feed.image_versions(AGENT) == (Version.parse("1.5.1"), Version.parse("1.6.1"))
    assert watcher.poll() == []
    assert watcher.poll() == []
    assert submitted == []
    assert [(s.path, s.status) for s in stand_in.seen] == [
        ("/product-versions.json", 200),
        ("/product-versions.json", 304),
        ("/product-versions.json", 304),
    ]
    asked = [s.headers.get("if-none-match") for s in stand_in.seen]
    assert asked == [None, stand_in.etag, stand_in.etag]
    assert stand_in.seen[1].headers["if-modified-since"] == "Fri, 04 Dec 2026 12:00:00 GMT"
    assert stand_in.seen[0].headers["accept"] == "application/json"


def test_a_new_version_in_a_mirrored_line_triggers_once_for_its_repository(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> None:
    stand_in.publish(feed(agent=("1.5.1",), hub=("1.5.1",)))
    watcher = feed_watcher(stand_in, client, job, submitted)
    assert watcher.poll() == []
    stand_in.publish(feed(agent=("1.5.1", "1.5.2"), hub=("1.5.1",)))
    triggers = watcher.poll()
    assert [without_time(t) for t in triggers] == [
        (
            RELEASE_FEED,
            f"feed:{AGENT}:1.5.2",
            Scope(frozenset({AGENT}), frozenset({Version.parse("1.5.2")})),
            f"{AGENT} 1.5.2 in the release feed",
        )
    ]
    assert submitted == triggers
    assert watcher.poll() == []  # unchanged: a 304
    assert stand_in.statuses() == [200, 200, 304]
    # the hub follows later: one trigger, for the hub
    stand_in.publish(feed(agent=("1.5.1", "1.5.2"), hub=("1.5.1", "1.5.2")))
    assert [t.key for t in watcher.poll()] == [f"feed:{HUB}:1.5.2"]
    assert len(submitted) == 2


def test_other_products_and_lines_not_mirrored_trigger_nothing(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted, logged: Captured
) -> None:
    stand_in.publish(feed())
    watcher = feed_watcher(stand_in, client, job, submitted)
    assert watcher.poll() == []
    stand_in.publish(feed(collector="1.0.1"))  # another product
    assert watcher.poll() == []
    stand_in.publish(feed(agent=("1.5.1", "1.6.2"), hub=("1.5.1", "1.6.2"), collector="1.0.1"))
    assert watcher.poll() == []  # line 1.6: not mirrored with lines ["1.5"]
    stand_in.publish(feed(agent=("1.5.1", "1.6.2", "1.5.2-rc1"), collector="1.0.1"))
    assert watcher.poll() == []  # a release candidate: not a release
    assert submitted == []
    assert stand_in.statuses() == [200, 200, 200, 200]
    assert logged.events().count("feed.ignored") == 2  # 1.6.2 of the agent and the hub


def test_a_trigger_already_queued_is_not_returned(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> None:
    submitted.accept = False
    stand_in.publish(feed())
    watcher = feed_watcher(stand_in, client, job, submitted)
    watcher.poll()
    stand_in.publish(feed(agent=("1.5.1", "1.5.2")))
    assert watcher.poll() == []
    assert [t.key for t in submitted] == [f"feed:{AGENT}:1.5.2"]


def test_a_failing_feed_backs_off_doubling_and_resets_on_success(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted, logged: Captured
) -> None:
    clock = Clock()
    watcher = feed_watcher(stand_in, client, job, submitted)
    watcher.backoff = Backoff(base=10.0, clock=clock)
    stand_in.error = 500
    assert watcher.poll() == []
    assert (watcher.backoff.failures, len(stand_in.seen)) == (1, 1)
    assert watcher.poll() == []  # backing off: not even a request
    clock.now += 9.9
    assert watcher.poll() == []
    assert len(stand_in.seen) == 1
    clock.now += 0.1  # 10 s after the failure
    assert watcher.poll() == []
    assert (watcher.backoff.failures, len(stand_in.seen)) == (2, 2)
    clock.now += 19.9  # then 20 s
    assert watcher.poll() == []
    assert len(stand_in.seen) == 2
    clock.now += 0.1
    assert watcher.poll() == []
    assert (watcher.backoff.failures, len(stand_in.seen)) == (3, 3)
    failed = [r for r in logged.records if r.getMessage() == "feed.failed"]
    assert len(failed) == 3
    assert [r.__dict__["fields"]["retry_in"] for r in failed] == [10.0, 20.0, 40.0]
    assert "HTTP 500" in failed[0].__dict__["fields"]["error"]
    # it recovers: the first answer is the baseline, and the backoff is reset
    stand_in.error = None
    stand_in.publish(feed())
    clock.now += 40
    assert watcher.poll() == []
    assert watcher.backoff.failures == 0
    assert watcher.poll() == []  # asked again at once: no backoff left
    assert stand_in.statuses() == [500, 500, 500, 200, 304]
    stand_in.publish(feed(agent=("1.5.1", "1.5.2")))
    assert [t.key for t in watcher.poll()] == [f"feed:{AGENT}:1.5.2"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not JSON"),
        (b'{"channels": 3}', "channels: expected a list"),
        (b"[]", "top level: expected an object"),
    ],
)
def test_a_malformed_feed_is_logged_and_backed_off(
    stand_in: StandIn,
    client: httpx.Client,
    job: Job,
    submitted: Submitted,
    logged: Captured,
    body: bytes,
    error: str,
) -> None:
    stand_in.body = body
    watcher = feed_watcher(stand_in, client, job, submitted)
    assert watcher.poll() == []
    assert watcher.poll() == []  # backing off (a minute, the feed's interval)
    assert len(stand_in.seen) == 1
    assert watcher.backoff.failures == 1
    assert watcher.feed is None
    (failed,) = [r for r in logged.records if r.getMessage() == "feed.failed"]
    assert error in failed.__dict__["fields"]["error"]


def test_an_unreachable_feed_is_logged_and_backed_off(
    client: httpx.Client, job: Job, submitted: Submitted, logged: Captured
) -> None:
    url = f"http://127.0.0.1:{free_port()}/product-versions.json"
    watcher = FeedWatcher(url, client, REPOS, job.selector, submitted, every=60.0)
    assert watcher.poll() == []
    assert watcher.backoff.failures == 1
    assert not watcher.backoff.due()
    assert watcher.poll() == []
    assert watcher.backoff.failures == 1  # not asked again
    assert logged.events() == ["feed.failed"]


def test_a_feed_with_an_image_version_that_does_not_parse_is_backed_off(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted, logged: Captured
) -> None:
    document = feed()
    document["channels"][0]["products"][0]["components"][1]["version"] = "1.5"  # the agent
    stand_in.publish(document)
    watcher = feed_watcher(stand_in, client, job, submitted)
    try:
        polled = watcher.poll()
    except Exception as error:  # the point: poll() must not raise
        pytest.fail(
            f"FeedWatcher.poll() raised {error!r} for a feed naming the agent at version "
            "'1.5': FeedWatcher._compare (feed.image_versions) runs outside poll()'s try, "
            "so the FeedError escapes instead of being logged and backed off (and "
            "Service.start, which polls the feed first, fails with it)"
        )
    assert polled == []
    assert watcher.backoff.failures == 1
    assert "feed.failed" in logged.events()


# --- GitHub releases --------------------------------------------------------------------


def releases(*names: str, drafts: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """`GET /repos/<owner>/<name>/releases`: newest first, as GitHub lists them."""
    listed = [{"tag_name": name, "draft": False, "prerelease": "rc" in name} for name in names]
    listed += [{"tag_name": name, "draft": True, "prerelease": False} for name in drafts]
    return listed[::-1]


def github_poller(
    stand_in: StandIn,
    client: httpx.Client,
    job: Job,
    submitted: Submitted,
    token: str | None = "ghp-test-token",
) -> GithubPoller:
    return GithubPoller(
        stand_in.url, GITHUB_REPO, token, client, REPOS, job.selector, submitted, 60.0
    )


def test_github_releases_are_polled_with_an_etag_and_a_token(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> None:
    stand_in.publish(releases("1.5.0", "metrics-collector-1.0.2", "1.5.1"))
    poller = github_poller(stand_in, client, job, submitted)
    assert poller.poll() == []  # the baseline
    assert poller.poll() == []
    assert submitted == []
    assert stand_in.statuses() == [200, 304]
    first, second = stand_in.seen
    assert first.path == f"/repos/{GITHUB_REPO}/releases?per_page=30"
    assert "if-none-match" not in first.headers
    assert second.headers["if-none-match"] == stand_in.etag
    for seen in stand_in.seen:
        assert seen.headers["authorization"] == "Bearer ghp-test-token"
        assert seen.headers["accept"] == "application/vnd.github+json"
        assert seen.headers["x-github-api-version"] == "2022-11-28"


def test_github_without_a_token_sends_no_authorization(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> None:
    stand_in.publish(releases("1.5.1"))
    github_poller(stand_in, client, job, submitted, token=None).poll()
    assert "authorization" not in stand_in.seen[0].headers


def test_a_new_github_release_triggers_once_and_drafts_wait(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> None:
    stand_in.publish(releases("1.5.0", "1.5.1"))
    poller = github_poller(stand_in, client, job, submitted)
    assert poller.poll() == []
    stand_in.publish(releases("1.5.0", "1.5.1", drafts=("1.5.2",)))
    assert poller.poll() == []  # a draft: not yet
    stand_in.publish(releases("1.5.0", "1.5.1", "1.5.2"))
    triggers = poller.poll()
    assert [without_time(t) for t in triggers] == [
        (
            GITHUB_RELEASES,
            f"github-release:{GITHUB_REPO}:1.5.2",
            Scope(None, frozenset({Version.parse("1.5.2")})),
            f"release 1.5.2 of {GITHUB_REPO}",
        )
    ]
    assert submitted == triggers
    assert poller.poll() == []
    assert stand_in.statuses() == [200, 200, 200, 304]


def test_github_releases_the_policy_does_not_mirror_trigger_nothing(
    stand_in: StandIn, client: httpx.Client, job: Job, submitted: Submitted
) -> None:
    stand_in.publish(releases("1.5.1"))
    poller = github_poller(stand_in, client, job, submitted)
    poller.poll()
    stand_in.publish(
        releases("1.5.1", "metrics-collector-1.0.3", "1.6.2", "1.5.3-rc1", "1.5", "v1.5.3")
    )
    triggers = poller.poll()
    assert [(t.key, t.scope.to_json()["versions"]) for t in triggers] == [
        (f"github-release:{GITHUB_REPO}:v1.5.3", ["1.5.3"])
    ]
    assert submitted == triggers


@pytest.mark.parametrize(
    ("status", "body"), [(401, None), (500, None), (200, b'{"message": "Not a list"}')]
)
def test_a_failing_github_is_backed_off(
    stand_in: StandIn,
    client: httpx.Client,
    job: Job,
    submitted: Submitted,
    logged: Captured,
    status: int,
    body: bytes | None,
) -> None:
    if body is None:
        stand_in.error = status
    else:
        stand_in.body = body
    poller = github_poller(stand_in, client, job, submitted)
    assert poller.poll() == []
    assert poller.poll() == []
    assert len(stand_in.seen) == 1
    assert poller.backoff.failures == 1
    assert logged.events() == ["github.failed"]


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("1.0.9.4", "1.0.9.4"),
        ("1.2.0-rc4", "1.2.0-rc4"),
        ("1.6.0-rc.1", "1.6.0-rc.1"),
        ("v1.5.3", "1.5.3"),
        ("1.5.3", "1.5.3"),
        ("metrics-collector-1.0.2", None),
        ("1.5", None),
        ("latest", None),
        ("1.5.3-linux-amd64", None),
        ("1.5.3.debug", None),
        ("V1.5.3", None),
        ("vv1.5.3", None),
        ("release-1.5.3", None),
    ],
)
def test_release_version(name: str, version: str | None) -> None:
    found = release_version(name)
    assert (str(found) if found is not None else None) == version
    if version is not None:
        assert found == Version.parse(version)


def test_release_version_reads_candidates_as_candidates() -> None:
    candidate = release_version("1.6.0-rc.1")
    assert candidate is not None
    assert candidate.prerelease == 1
    assert candidate == Version.parse("1.6.0-rc1")
    four = release_version("1.0.9.4")
    assert four is not None and four.numbers == (1, 0, 9, 4) and four.prerelease is None


# --- the upstream tag watch ------------------------------------------------------------------


def manifest(release: str) -> Manifest:
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {},
            "layers": [],
            "annotations": {"release": release},
        }
    ).encode()
    return Manifest.parse(raw)


@pytest.fixture
def source_layout(tmp_path: Path) -> OciLayout:
    """An OCI layout standing in for the source: agent and hub at 1.5.1, `1.5` there."""
    layout = OciLayout(tmp_path / "upstream", create=True)
    for repo in REPOS:
        layout.put_manifest(repo, "1.5.1", manifest("1.5.1"))
        layout.put_manifest(repo, "1.5", manifest("1.5.1"))
    return layout


def test_a_moved_rolling_tag_triggers_that_tag(
    source_layout: OciLayout, submitted: Submitted
) -> None:
    watcher = TagWatcher(
        source_layout, REPOS, lambda repo: frozenset({Line(1, 5)}), submitted, 60.0
    )
    assert watcher.poll() == []  # the baseline
    assert watcher.poll() == []
    moved = manifest("1.5.2")
    source_layout.put_manifest(AGENT, "1.5.2", moved)
    assert watcher.poll() == []  # a specific tag is not watched
    source_layout.put_manifest(AGENT, "1.5", moved)
    triggers = watcher.poll()
    assert [without_time(t) for t in triggers] == [
        (
            TAG_WATCH,
            f"watch:{AGENT}:1.5:{moved.digest}",
            Scope(repositories=frozenset({AGENT}), tags=frozenset({"1.5"})),
            f"{AGENT}:1.5 moved upstream to {moved.digest[:19]}",
        )
    ]
    assert submitted == triggers
    assert watcher.poll() == []


def test_a_rolling_tag_that_appears_triggers_and_one_that_goes_does_not(
    source_layout: OciLayout, submitted: Submitted
) -> None:
    lines = {AGENT: frozenset({Line(1, 5), Line(1, 6)}), HUB: frozenset({Line(1, 5)})}
    watcher = TagWatcher(source_layout, REPOS, lines.__getitem__, submitted, 60.0)
    assert watcher.poll() == []
    source_layout.put_manifest(AGENT, "1.6", manifest("1.6.0"))
    assert [t.scope for t in watcher.poll()] == [
        Scope(repositories=frozenset({AGENT}), tags=frozenset({"1.6"}))
    ]
    fresh = OciLayout(source_layout.root)  # the tag is gone upstream
    index = json.loads((source_layout.root / "index.json").read_text())
    index["manifests"] = [
        m
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] != f"{HUB}:1.5"
    ]
    (source_layout.root / "index.json").write_text(json.dumps(index))
    watcher.source = fresh
    assert watcher.poll() == []
    assert len(submitted) == 1


def test_a_failing_source_backs_off(tmp_path: Path, submitted: Submitted, logged: Captured) -> None:
    asked: list[str] = []

    def lines(repo: str) -> frozenset[Line]:
        asked.append(repo)
        return frozenset({Line(1, 5)})

    missing = OciLayout(tmp_path / "missing")  # no index.json: NotFound
    watcher = TagWatcher(missing, REPOS, lines, submitted, 60.0)
    assert watcher.poll() == []
    assert watcher.backoff.failures == 1
    assert watcher.poll() == []
    assert asked == [AGENT]  # the second poll did not look
    assert logged.events() == ["watch.failed"]


# --- backoff and conditional GETs ---------------------------------------------------------


def test_backoff_doubles_up_to_its_ceiling_and_resets() -> None:
    clock = Clock()
    backoff = Backoff(base=10.0, ceiling=25.0, clock=clock)
    assert backoff.due()
    delays = []
    for _ in range(4):
        start = clock.now
        backoff.failed("test", "down")
        assert not backoff.due()
        while not backoff.due():
            clock.now += 0.5
        delays.append(clock.now - start)
    assert delays == [10.0, 20.0, 25.0, 25.0]
    assert backoff.failures == 4
    backoff.failed("test", "down")
    backoff.succeeded()
    assert backoff.due()
    assert backoff.failures == 0


def test_conditional_get(stand_in: StandIn, client: httpx.Client) -> None:
    stand_in.body = b'{"a": 1}'
    request = Conditional(f"{stand_in.url}/thing", {"Accept": "application/json"})
    assert request.get(client) == b'{"a": 1}'
    assert request.etag == stand_in.etag
    assert request.get(client) is None
    stand_in.body = b'{"a": 2}'
    assert request.get(client) == b'{"a": 2}'
    assert stand_in.statuses() == [200, 304, 200]
    stand_in.error = 503
    with pytest.raises(httpx.HTTPStatusError):
        request.get(client)
    assert request.etag == stand_in.etag  # a failure keeps what it knew


# --- notifications -------------------------------------------------------------------------


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def stopping() -> Iterator[list[Notifier]]:
    """Notifiers stopped by their tests; their threads (which notice within half a
    second) are joined once, at the end of the module."""
    stopped: list[Notifier] = []
    yield stopped
    for notifier in stopped:
        notifier._thread.join(timeout=5)
        assert not notifier._thread.is_alive()


@pytest.fixture
def notifiers(stopping: list[Notifier]) -> Iterator[list[Notifier]]:
    started: list[Notifier] = []
    yield started
    for notifier in started:
        notifier.stop()
    stopping.extend(started)


def test_a_notification_is_retried_and_arrives_once_signed(
    stand_in: StandIn, notifiers: list[Notifier]
) -> None:
    stand_in.answers = [500, 503]
    secret = b"notify-secret"
    notifier = Notifier([Receiver(f"{stand_in.url}/mirror", secret)], backoff=0.01)
    notifiers.append(notifier)
    notifier.start()
    message = {"run": "r-1", "outcome": "succeeded", "written": ["azureiotedge-agent:1.5.2"]}
    notifier.send(message)
    wait_for(lambda: notifier.sent == 1)
    assert (notifier.sent, notifier.failed) == (1, 0)
    body = json.dumps(message, sort_keys=True).encode()
    assert [(s.method, s.path, s.status) for s in stand_in.seen] == [
        ("POST", "/mirror", 500),
        ("POST", "/mirror", 503),
        ("POST", "/mirror", 200),
    ]
    deliveries = {s.headers["x-mirror-delivery"] for s in stand_in.seen}
    assert len(deliveries) == 1
    uuid.UUID(deliveries.pop())
    for seen in stand_in.seen:
        assert seen.body == body
        assert json.loads(seen.body) == message
        assert seen.headers["content-type"] == "application/json"
        timestamp = seen.headers["x-mirror-timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        mac = hmac.new(secret, timestamp.encode() + b"." + seen.body, hashlib.sha256)
        assert seen.headers["x-mirror-signature"] == "sha256=" + mac.hexdigest()


def test_each_message_has_its_own_delivery_and_no_secret_no_signature(
    stand_in: StandIn, notifiers: list[Notifier]
) -> None:
    notifier = Notifier([Receiver(f"{stand_in.url}/mirror", None)], backoff=0.01)
    notifiers.append(notifier)
    notifier.start()
    notifier.send({"run": "r-1"})
    notifier.send({"run": "r-2"})
    wait_for(lambda: notifier.sent == 2)
    assert [json.loads(s.body)["run"] for s in stand_in.seen] == ["r-1", "r-2"]
    assert len({s.headers["x-mirror-delivery"] for s in stand_in.seen}) == 2
    assert all("x-mirror-signature" not in s.headers for s in stand_in.seen)


def test_a_receiver_that_stays_down_is_given_up_after_five_attempts(
    stand_in: StandIn, notifiers: list[Notifier], logged: Captured
) -> None:
    stand_in.answers = [500] * 10
    notifier = Notifier([Receiver(f"{stand_in.url}/mirror", b"s")], backoff=0.01)
    notifiers.append(notifier)
    notifier.start()
    notifier.send({"run": "r-1"})
    wait_for(lambda: notifier.failed == 1)
    assert (notifier.sent, len(stand_in.seen)) == (0, 5)
    assert logged.events() == ["notify.failed"]

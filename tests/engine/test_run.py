"""One run of a job (`Runner`), as `mirror sync` and the service start it, between two
real registries with a real ledger: how it ends (completed, failed, interrupted), its
record, its scope, and the target's run lock.

Upstream holds edgeAgent 1.4.0, 1.4.1, 1.5.0 and 1.5.1 with the rolling tags 1.4 and
1.5; the job mirrors line 1.5 by the shipped policy (`lines: ["1.5"]`), so 1.4 is
skipped, or every tag (`all_tags`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mirror.engine.job import Job
from mirror.engine.run import Runner, RunReport
from mirror.governance.decide import Action
from mirror.governance.scope import Scope
from mirror.governance.versions import Version
from mirror.ledger import Ledger, LedgerError
from mirror.referrers import fallback_tag
from mirror.settings.config import Config
from tests.support.images import DOCKER_IMAGE, DOCKER_LIST, OCI_IMAGE, OCI_INDEX, Pushed, Seeder
from tests.support.registry import Registry, Request, free_port
from tests.support.reporting import Quiet

AGENT = "azureiotedge-agent"
RELEASES = ("1.4.0", "1.4.1", "1.5.0", "1.5.1")
ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def make_job(source: str, target: str, *, all_tags: bool = False) -> Job:
    return Job(
        config=Config.model_validate({"lines": ["1.5"]}),
        source=source,
        target=target,
        repositories=(AGENT,),
        all_tags=all_tags,
        concurrency=4,
    )


def expected_tags(all_tags: bool) -> list[str]:
    """What a full run mirrors: line 1.5 by the policy (1.4 is skipped), or every tag."""
    return (
        ["1.4", "1.4.0", "1.4.1", "1.5", "1.5.0", "1.5.1"]
        if all_tags
        else ["1.5", "1.5.0", "1.5.1"]
    )


@pytest.fixture
def releases(seeder: Seeder) -> dict[str, Pushed]:
    pushed = {version: seeder.push_release(AGENT, version) for version in RELEASES}
    seeder.tag(AGENT, "1.4.1", "1.4")
    seeder.tag(AGENT, "1.5.1", "1.5")
    return pushed


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite"


@pytest.fixture
def ledger(ledger_path: Path) -> Iterator[Ledger]:
    with Ledger.open(str(ledger_path)) as opened:
        yield opened


def run(runner: Runner, **options: Any) -> RunReport:
    """A run inside the target's run lock, as `mirror sync` and the service do."""
    reporter = options.pop("reporter", None) or Quiet(strict=True)
    with runner.exclusive() as mine:
        assert mine, "the run lock was not free"
        return runner.run(reporter, **options)


def written(report: RunReport) -> list[str]:
    assert report.outcome is not None
    return sorted(write.tag for write in report.outcome.result.tags)


def manifest_requests(requests: list[Request]) -> list[str]:
    """The references (tag or digest) of the manifest requests: HEAD or GET."""
    return [
        r.path.rpartition("/manifests/")[2]
        for r in requests
        if "/manifests/" in r.path and r.method in ("HEAD", "GET")
    ]


def assert_mirrored_as_upstream(upstream: Seeder, mirror: Seeder, tags: list[str]) -> None:
    assert mirror.tags(AGENT) == tags
    for tag in tags:
        digest = mirror.digest_of(AGENT, tag)
        assert digest == upstream.digest_of(AGENT, tag), tag
        assert_complete(mirror, digest, tag)


_ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_IMAGE, DOCKER_IMAGE])


def assert_complete(mirror: Seeder, digest: str | None, tag: str) -> None:
    """The manifest `digest` is in the target with every child manifest and every blob
    they name, checked digest by digest in what the target serves."""
    assert digest is not None
    assert mirror.has_manifest(AGENT, digest), f"{tag}: manifest {digest} missing"
    response = mirror.client.get(f"/v2/{AGENT}/manifests/{digest}", headers={"Accept": _ACCEPT})
    response.raise_for_status()
    document: dict[str, Any] = json.loads(response.content)
    for child in document.get("manifests", []):
        assert_complete(mirror, child["digest"], f"{tag} > {child['digest']}")
    blobs = [document["config"], *document["layers"]] if "config" in document else []
    for blob in blobs:
        assert mirror.has_blob(AGENT, blob["digest"]), f"{tag}: blob {blob['digest']} missing"


class Holder:
    """Another process holding the target's run lock in the ledger (as a second
    `mirror sync` would), until killed."""

    _SCRIPT = """
import sys
from mirror.ledger import Ledger

ledger = Ledger.open(sys.argv[1])
print("held" if ledger.run_lock(sys.argv[2]).acquire() else "busy", flush=True)
sys.stdin.readline()
"""

    def __init__(self, ledger: Path, target: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", self._SCRIPT, str(ledger), target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


# --- how a run ends, and its record ---------------------------------------------------


@pytest.mark.parametrize("all_tags", [False, True], ids=["policy", "all-tags"])
def test_a_completed_run_is_recorded(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    releases: dict[str, Pushed],
    ledger: Ledger,
    all_tags: bool,
) -> None:
    runner = Runner(make_job(upstream.url, target.url, all_tags=all_tags), ledger)
    reporter = Quiet()
    report = run(runner, triggered_by="schedule", reporter=reporter)
    assert report.outcome is not None
    failures = [f"{what}: {why}" for what, why in report.outcome.failures]
    failures += report.outcome.result.not_attempted + reporter.failures
    assert (report.state, report.error, report.ledger_error, failures) == (
        "completed",
        None,
        None,
        [],
    )
    assert report.outcome is not None and report.outcome.ok
    assert written(report) == expected_tags(all_tags)
    assert_mirrored_as_upstream(seeder, target_seeder, expected_tags(all_tags))
    if not all_tags:  # the policy with lines ["1.5"] looks at 1.4 and skips it
        skipped = {s.tag: s.action for s in report.outcome.steps if s.tag.startswith("1.4")}
        assert skipped == dict.fromkeys(("1.4", "1.4.0", "1.4.1"), Action.SKIP)

    again = run(runner, triggered_by="release-feed")
    assert again.state == "completed"
    assert written(again) == []

    runs = ledger.recent_runs(target=target.url)
    assert [(r.id, r.outcome, r.triggered_by, r.written) for r in runs] == [
        (again.run_id, "completed", "release-feed", 0),
        (report.run_id, "completed", "schedule", len(expected_tags(all_tags))),
    ]
    assert runs[1].source == upstream.address  # the registry named without its scheme
    assert runs[1].started == report.started and runs[1].finished == report.finished


@pytest.mark.parametrize("all_tags", [False, True], ids=["policy", "all-tags"])
def test_a_scoped_run_looks_only_at_the_release(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    releases: dict[str, Pushed],
    ledger: Ledger,
    all_tags: bool,
) -> None:
    runner = Runner(make_job(upstream.url, target.url, all_tags=all_tags), ledger)
    assert run(runner).state == "completed"
    before = {tag: target_seeder.digest_of(AGENT, tag) for tag in expected_tags(all_tags)}
    new = seeder.push_release(AGENT, "1.5.2")
    seeder.tag(AGENT, "1.5.2", "1.5")
    release = Scope(versions=frozenset({Version.parse("1.5.2")}))

    mark = len(upstream.requests())
    report = run(runner, scope=release, triggered_by="release-feed")
    assert report.state == "completed"
    assert written(report) == ["1.5", "1.5.2"]
    looked = {step.tag for step in report.outcome.steps} if report.outcome else set()
    assert looked == {"1.5", "1.5.2"}
    # Not a single manifest request upstream about the releases the scope leaves out.
    old = ["1.4", *(v for v in RELEASES if v != "1.5.2")]
    out_of_scope = set(old)
    for version in RELEASES:
        out_of_scope |= {releases[version].digest, *releases[version].children}
    requests = upstream.requests_since(mark)
    asked = manifest_requests(requests)
    assert not out_of_scope & set(asked), f"out of scope: {sorted(out_of_scope & set(asked))}"
    release_manifests = {new.digest, *new.children}
    referrers_tags = {fallback_tag(digest) for digest in release_manifests}  # signatures
    assert set(asked) <= {"1.5", "1.5.2", *release_manifests, *referrers_tags}
    assert [r.method for r in requests if "/tags/list" in r.path] == ["GET"]

    assert target_seeder.digest_of(AGENT, "1.5.2") == new.digest
    assert target_seeder.digest_of(AGENT, "1.5") == new.digest
    assert_complete(target_seeder, new.digest, "1.5.2")
    for tag, digest in before.items():
        if tag != "1.5":
            assert target_seeder.digest_of(AGENT, tag) == digest, f"{tag} changed"
    (record, *_) = ledger.recent_runs(target=target.url)
    assert (record.id, record.outcome, record.triggered_by) == (
        report.run_id,
        "completed",
        "release-feed",
    )
    assert (record.steps, record.written) == (2, 2)

    # With nothing left to do, a scoped run costs less than a full one.
    def cost(scope: Scope) -> int:
        marks = len(upstream.requests()), len(target.requests())
        report = run(runner, scope=scope)
        assert (report.state, written(report)) == ("completed", [])
        return len(upstream.requests_since(marks[0])) + len(target.requests_since(marks[1]))

    scoped, full = cost(release), cost(Scope())
    assert scoped < full, f"a scoped no-op run sent {scoped} requests, a full one {full}"


def test_a_run_that_cannot_reach_the_source_fails_and_is_recorded(
    target: Registry, target_seeder: Seeder, ledger: Ledger
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    runner = Runner(make_job(nowhere, target.url), ledger)
    report = run(runner, reporter=Quiet(), triggered_by="schedule")
    assert report.state == "failed"
    assert report.error is not None
    assert "127.0.0.1" in str(report.error)
    assert report.outcome is None
    assert report.ledger_error is None
    (record,) = ledger.recent_runs(target=target.url)
    assert (record.id, record.outcome, record.triggered_by) == (report.run_id, "failed", "schedule")
    assert (record.steps, record.written) == (0, 0)
    assert target_seeder.tags(AGENT) == []


# --- the run lock ---------------------------------------------------------------------


def test_a_run_does_not_start_while_another_process_holds_the_lock(
    upstream: Registry,
    target: Registry,
    target_seeder: Seeder,
    releases: dict[str, Pushed],
    ledger: Ledger,
    ledger_path: Path,
) -> None:
    runner = Runner(make_job(upstream.url, target.url), ledger)
    holder = Holder(ledger_path, target.url)
    try:
        with runner.exclusive() as mine:
            assert mine is False
        # Another target is not held up.
        other = Runner(make_job(upstream.url, f"oci:{ledger_path.parent / 'layout'}"), ledger)
        with other.exclusive() as free:
            assert free is True
    finally:
        holder.kill()
    with runner.exclusive() as mine:
        assert mine is True
        assert runner.run(Quiet(strict=True)).state == "completed"
    assert target_seeder.tags(AGENT) == expected_tags(False)


def test_a_ledger_that_cannot_be_written_does_not_stop_the_run(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    releases: dict[str, Pushed],
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with Ledger.open(str(blocker / "ledger.sqlite")) as ledger:
        runner = Runner(make_job(upstream.url, target.url), ledger)
        with runner.exclusive() as mine:
            assert mine is True  # no lock to be had: the run goes ahead without one
            report = runner.run(Quiet(strict=True))
    assert report.state == "completed"
    assert not report.recorded
    assert isinstance(report.ledger_error, LedgerError)
    assert "recording the run" in str(report.ledger_error)
    assert_mirrored_as_upstream(seeder, target_seeder, expected_tags(False))


# --- interrupted ----------------------------------------------------------------------


class StopOnceCopying(Quiet):
    """Sets `stop` once `after` bytes went through (blob uploads are under way)."""

    def __init__(self, stop: threading.Event, after: int) -> None:
        super().__init__()
        self.stop = stop
        self.after = after
        self.copied = 0
        self._lock = threading.Lock()

    def bytes_copied(self, count: int) -> None:
        with self._lock:
            self.copied += count
            if self.copied >= self.after:
                self.stop.set()


def test_an_interrupted_run_leaves_only_complete_tags_and_the_next_run_finishes(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    ledger: Ledger,
) -> None:
    """1.5.0 is mirrored; upstream then publishes 1.5.2 (small) and 1.5.3 (3 MiB app
    layers) and moves 1.5. The run is stopped 1 MiB into the copy: 1.5.3 (and so 1.5)
    cannot have been written, 1.5.2 may or may not; whatever tag the target has points
    at a complete image."""
    seeder.push_release(AGENT, "1.5.0")
    seeder.tag(AGENT, "1.5.0", "1.5")
    runner = Runner(make_job(upstream.url, target.url), ledger)
    first = run(runner)
    assert written(first) == ["1.5", "1.5.0"]
    old = target_seeder.digest_of(AGENT, "1.5")
    seeder.push_release(AGENT, "1.5.2")
    big = seeder.push_release(AGENT, "1.5.3", layer_size=3 * MIB)
    seeder.tag(AGENT, "1.5.3", "1.5")

    stop = threading.Event()
    reporter = StopOnceCopying(stop, after=MIB)
    report = run(runner, reporter=reporter, stop=stop, triggered_by="schedule")
    assert stop.is_set()
    assert report.state == "interrupted"
    assert report.outcome is not None and report.outcome.interrupted
    assert set(written(report)) <= {"1.5.2"}, written(report)
    assert report.outcome.result.bytes_copied < 3 * MIB
    assert target_seeder.digest_of(AGENT, "1.5") == old
    assert target_seeder.digest_of(AGENT, "1.5.3") is None
    big_layers = big.blobs[2::3]  # per platform: config, base layer, app layer
    assert [target_seeder.has_blob(AGENT, digest) for digest in big_layers] == [False] * 3, (
        "an abandoned blob upload completed in the target"
    )
    for tag in target_seeder.tags(AGENT):
        assert_complete(target_seeder, target_seeder.digest_of(AGENT, tag), tag)
    (record, *_) = ledger.recent_runs(target=target.url)
    assert (record.id, record.outcome, record.triggered_by) == (
        report.run_id,
        "interrupted",
        "schedule",
    )

    final = run(runner)
    assert final.state == "completed"
    assert set(written(final)) == {"1.5", "1.5.2", "1.5.3"} - set(written(report))
    assert_mirrored_as_upstream(seeder, target_seeder, ["1.5", "1.5.0", "1.5.2", "1.5.3"])
    outcomes = [r.outcome for r in ledger.recent_runs(target=target.url)]
    assert outcomes == ["completed", "interrupted", "completed"]

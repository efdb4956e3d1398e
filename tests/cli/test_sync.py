"""`mirror sync` and `mirror plan` as a user runs them: a subprocess, its exit code,
what it prints. Errors must be one line on stderr, with no traceback."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.commands import ROOT, one_line_error, run_mirror
from tests.support.images import Seeder
from tests.support.registry import Registry, free_port

REPOS = ("azureiotedge-agent", "azureiotedge-hub")


def seed(seeder: Seeder) -> None:
    for version in ("1.5.0", "1.5.1"):
        for repo in REPOS:
            seeder.push_release(repo, version)
    for repo in REPOS:
        seeder.tag(repo, "1.5.1", "1.5")


def test_help_explains_every_command(tmp_path: Path) -> None:
    result = run_mirror("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("sync", "plan"):
        assert command in result.stdout
    sync_help = run_mirror("sync", "--help", cwd=tmp_path)
    for option in ("--source", "--target", "--repo", "--all-tags", "--concurrency", "--config"):
        assert option in sync_help.stdout


def test_plan_then_sync_then_plan(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seed(seeder)
    common = ["--source", upstream.url, "--target", target.url, "--all-tags"]
    for repo in REPOS:
        common += ["--repo", repo]

    before = run_mirror("plan", *common, "--output", "json", cwd=tmp_path)
    assert before.returncode == 3, before.stderr
    steps = json.loads(before.stdout)
    assert {(s["repository"], s["tag"], s["action"]) for s in steps} == {
        (repo, tag, "create") for repo in REPOS for tag in ("1.5", "1.5.0", "1.5.1")
    }

    synced = run_mirror("sync", *common, cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    events = [line for line in synced.stderr.splitlines() if "event=" in line]
    assert any("event=tag.written" in line for line in events)
    done = next(line for line in events if "event=sync.done" in line)
    assert "tags_written=6" in done and "failures=0" in done

    after = run_mirror("plan", *common, cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert "0 create, 0 update, 0 hold, 6 skip" in after.stdout


def test_default_target_is_an_oci_layout_in_the_working_directory(
    tmp_path: Path, upstream: Registry, seeder: Seeder
) -> None:
    seed(seeder)
    result = run_mirror(
        "sync", "--source", upstream.url, "--repo", "azureiotedge-agent", "--all-tags", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "mirror-store" / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
    assert names == {
        "azureiotedge-agent:1.5",
        "azureiotedge-agent:1.5.0",
        "azureiotedge-agent:1.5.1",
    }


def test_without_all_tags_the_policy_selects(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    for tag in (
        "1.4.9",
        "1.5.0",
        "1.5.1",
        "1.6.0-rc.1",
        "latest",
        "1.5.1-linux-amd64",
        "1.5.1.debug",
    ):
        seeder.push_release("azureiotedge-agent", tag, version=tag)
    seeder.tag("azureiotedge-agent", "1.5.1", "1.5")
    result = run_mirror(
        "plan",
        "--source",
        upstream.url,
        "--target",
        target.url,
        "--repo",
        "azureiotedge-agent",
        cwd=tmp_path,
    )
    assert result.returncode == 3, result.stderr
    lines = {line.split()[1].split(":", 1)[1]: line for line in result.stdout.splitlines()[:-1]}
    assert lines["1.5.0"].startswith("create")
    assert lines["1.5"].startswith("create")
    assert "line 1.4" in lines["1.4.9"] and lines["1.4.9"].startswith("skip")
    for tag in ("1.6.0-rc.1", "latest", "1.5.1-linux-amd64", "1.5.1.debug"):
        assert lines[tag].startswith("skip"), lines[tag]


def test_unreachable_registry_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    result = run_mirror(
        "sync",
        "--source",
        f"http://127.0.0.1:{port}",
        "--target",
        f"oci:{tmp_path / 'x'}",
        "--all-tags",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"cannot reach http://127.0.0.1:{port}" in one_line_error(result)


def test_unknown_repository_is_one_line(tmp_path: Path, upstream: Registry) -> None:
    result = run_mirror(
        "sync", "--source", upstream.url, "--repo", "no-such-image", "--all-tags", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "repository not found" in one_line_error(result)


def test_plain_http_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    result = run_mirror("plan", "--source", "http://registry.example.com", cwd=tmp_path)
    assert result.returncode == 2
    assert "refusing plain http to registry.example.com" in one_line_error(result)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("concurency: 4\n", "mirror.yaml:1: concurency: unknown key (did you mean concurrency?)"),
        ("repositories: []\n", "mirror.yaml:1: repositories: "),
        ("concurrency: 0\n", "mirror.yaml:1: concurrency: must be >= 1"),
        ("source: [\n", "mirror.yaml:2: not valid YAML"),
        ("version: 1\nversion: 1\n", "mirror.yaml:2: version: duplicate key"),
    ],
)
def test_bad_config_is_one_line_naming_file_line_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "mirror.yaml").write_text(text)
    result = run_mirror("plan", cwd=tmp_path)
    assert result.returncode == 2
    assert message in one_line_error(result)


def test_refused_credentials_are_one_line_without_the_secret(tmp_path: Path, acr: object) -> None:
    """The registry is the real docker-registry behind the ACR stand-in (token auth)."""
    url = acr.url  # type: ignore[attr-defined]
    host = url.removeprefix("http://")
    (tmp_path / "mirror.yaml").write_text(
        f"registries:\n  '{host}':\n    username: intruder\n    password_env: MIRROR_TEST_SECRET\n"
    )
    result = run_mirror(
        "plan",
        "--source",
        url,
        "--repo",
        "azureiotedge-agent",
        "--all-tags",
        "--target",
        f"oci:{tmp_path / 'x'}",
        cwd=tmp_path,
        env={"MIRROR_TEST_SECRET": "hunter2-do-not-print"},
    )
    assert result.returncode == 1
    line = one_line_error(result)
    assert "refused the credentials" in line
    assert "hunter2-do-not-print" not in result.stderr + result.stdout


def test_a_killed_sync_leaves_no_tag_on_partial_content_and_resumes(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder
) -> None:
    """SIGKILL the sync once the target has some of the content, then check every
    tag in the target is complete, then run again and check only the rest moves."""
    pushed = []
    for version in ("1.5.0", "1.5.1", "1.5.2", "1.5.3"):
        for repo in REPOS:
            pushed.append(seeder.push_release(repo, version, layer_size=1_500_000))
    args = [
        "sync",
        "--source",
        upstream.url,
        "--target",
        target.url,
        "--all-tags",
        "--concurrency",
        "1",
    ]
    for repo in REPOS:
        args += ["--repo", repo]
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "mirror", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        uploads = [
            r for r in target.requests() if r.method == "PUT" and "/blobs/uploads/" in r.path
        ]
        if len(uploads) >= 5:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the sync finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()

    for repo in REPOS:
        for tag in target_seeder.tags(repo):
            release = next(p for p in pushed if p.repository == repo and p.tag == tag)
            assert all(target_seeder.has_manifest(repo, child) for child in release.children)
            assert all(target_seeder.has_blob(repo, blob) for blob in release.blobs)
    present_before = {
        (p.repository, b)
        for p in pushed
        for b in p.blobs
        if target_seeder.has_blob(p.repository, b)
    }
    assert present_before, "nothing was copied before the kill"

    mark = len(target.requests())
    result = run_mirror(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    image_blobs = {b for p in pushed for b in p.blobs}
    uploaded = [  # of the images' blobs (the run also attaches provenance records)
        r
        for r in target.requests_since(mark)
        if r.method == "PUT"
        and "/blobs/uploads/" in r.path
        and r.path.rpartition("digest=")[2] in image_blobs
    ]
    missing = {(p.repository, b) for p in pushed for b in p.blobs} - present_before
    assert len(uploaded) <= len(missing)
    for release in pushed:
        assert target_seeder.digest_of(release.repository, release.tag) == release.digest


def test_a_target_that_dies_ends_the_run_quickly_with_a_short_summary(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    """The target is killed while blobs are being copied: the run ends within seconds,
    with one line per kind of failure (not one per blob), and is recorded as failed."""
    for version in ("1.5.0", "1.5.1", "1.5.2", "1.5.3"):
        for repo in REPOS:
            seeder.push_release(repo, version, layer_size=1024 * 1024)
    ledger = tmp_path / "ledger.sqlite"
    args = [sys.executable, "-m", "mirror", "sync", "--source", upstream.url]
    args += ["--target", target.url, "--all-tags", "--ledger", str(ledger), "--concurrency", "2"]
    process = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(r.method == "PUT" and "/blobs/uploads/" in r.path for r in target.requests()):
            break
        time.sleep(0.01)
    assert target.process is not None and process.poll() is None
    target.process.kill()
    died = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert time.monotonic() - died < 30
    errors = [line for line in stderr.splitlines() if "level=error" in line]
    assert 1 <= len(errors) <= 4, stderr
    assert any("count=" in line for line in errors), errors
    assert "Traceback" not in stderr
    from mirror.ledger import Ledger

    with Ledger.open(str(ledger)) as book:
        assert [run.outcome for run in book.recent_runs()] == ["failed"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_sync_at_a_safe_point_records_it_and_says_so(
    tmp_path: Path,
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    sig: signal.Signals,
    code: int,
) -> None:
    pushed = [
        seeder.push_release(repo, version, layer_size=1024 * 1024)
        for version in ("1.5.0", "1.5.1", "1.5.2")
        for repo in REPOS
    ]
    ledger = tmp_path / "ledger.sqlite"
    args = [sys.executable, "-m", "mirror", "sync", "--source", upstream.url, "--all-tags"]
    args += ["--target", target.url, "--ledger", str(ledger), "--concurrency", "1"]
    process = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(r.method == "PUT" and "/blobs/uploads/" in r.path for r in target.requests()):
            break
        time.sleep(0.01)
    assert process.poll() is None, "the sync ended before the signal"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    said = [line for line in stderr.splitlines() if line.startswith("mirror: ")]
    assert len(said) == 1, stderr
    assert f"interrupted by {sig.name} (recorded as interrupted)" in said[0]
    from mirror.ledger import Ledger

    with Ledger.open(str(ledger)) as book:
        assert [run.outcome for run in book.recent_runs()] == ["interrupted"]
    target_seeder = Seeder(target.url)
    try:
        for release in pushed:
            if target_seeder.digest_of(release.repository, release.tag) is not None:
                assert all(
                    target_seeder.has_manifest(release.repository, c) for c in release.children
                )
    finally:
        target_seeder.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target", ""), "--target: empty"),
        (("--source", " "), "--source: empty"),
        (("--target", "127.0.0.1:70000"), "port 70000 is not 1-65535"),
        (("--target", "b\udcfccher.example"), "codec failed"),
    ],
)
def test_bad_addresses_are_usage_errors_that_say_why(
    tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    result = run_mirror("plan", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in one_line_error(result)


def test_a_web_server_that_is_not_a_registry_is_one_line(tmp_path: Path) -> None:
    """An HTML error page is summarised, not printed whole."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>\n<head><title>404 Not Found</title></head>\n<body>" + b"x" * 500
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_mirror("plan", "--source", url, "--repo", "azureiotedge-agent", cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    line = one_line_error(result)
    assert "404 Not Found" in line
    assert "<" not in line.partition("repository")[2] and len(line) < 300, line


def test_one_unknown_repository_does_not_stop_the_others(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder
) -> None:
    seed(seeder)
    args = ["--source", upstream.url, "--target", target.url, "--all-tags"]
    repos = ["--repo", "azureiotedge-agent", "--repo", "no-such-repository"]
    result = run_mirror("sync", *args, *repos, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "no-such-repository" in result.stderr
    assert target_seeder.tags("azureiotedge-agent"), "the known repository was mirrored"


def test_an_oci_target_that_is_a_file_is_one_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    result = run_mirror("sync", "--source", "oci:./nowhere", "--target", "oci:a-file", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "oci:a-file: not a directory" in one_line_error(result)


def test_a_policy_that_selects_nothing_is_a_warning_naming_the_rule(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seed(seeder)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nrules:\n- repositories: [azureiotedge-agent, azureiotedge-hub]\n"
        "  lines: ['1.5']\n  versions: '>=1.7,<1.5'\n"
    )
    (tmp_path / "mirror.yaml").write_text(f"version: 1\npolicy: {policy}\n")
    result = run_mirror("plan", "--source", upstream.url, "--target", target.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "policy.selects_nothing" in line]
    assert len(warnings) == 2, result.stderr
    assert all("rule=rules[0]" in line for line in warnings)


def test_plan_lists_tags_in_version_order_in_text_and_json(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    for version in ("1.5.2", "1.5.10", "1.5.9"):
        seeder.push_release(REPOS[0], version)
    seeder.tag(REPOS[0], "1.5.10", "1.5")
    common = ["--source", upstream.url, "--target", target.url, "--repo", REPOS[0]]
    planned = run_mirror("plan", *common, "-o", "json", cwd=tmp_path)
    assert [s["tag"] for s in json.loads(planned.stdout)] == ["1.5.2", "1.5.9", "1.5.10", "1.5"]
    text = run_mirror("plan", *common, cwd=tmp_path)
    tags = [line.split()[1].split(":")[1] for line in text.stdout.splitlines()[:-1]]
    assert tags == ["1.5.2", "1.5.9", "1.5.10", "1.5"]


def on_a_terminal(*args: str, cwd: Path, columns: int = 80) -> str:
    """`mirror ARGS` with a pseudo-terminal for its output (what a person sees)."""
    command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "mirror", *args))
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)}
    result = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout.replace("\r\n", "\n")


def test_on_a_terminal_a_sync_ends_with_a_sentence_not_log_lines(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seed(seeder)
    common = ["--source", upstream.url, "--target", target.url, "--no-progress"]
    first = on_a_terminal("sync", *common, cwd=tmp_path)
    assert "event=" not in first and "time=" not in first, first
    assert re.search(
        r"^6 tags mirrored: \d+ blobs uploaded, \d+ mounted, [0-9.]+ kB in", first, re.M
    ), first
    again = on_a_terminal("sync", *common, cwd=tmp_path)
    assert re.search(r"^nothing to copy: 6 tags up to date \(", again, re.M), again
    # Not on a terminal, or when asked: log lines.
    piped = run_mirror("sync", *common, cwd=tmp_path)
    assert "event=sync.done" in piped.stderr
    asked = on_a_terminal("sync", *common, "--log-format", "json", cwd=tmp_path)
    assert '"event": "sync.done"' in asked


def test_on_a_terminal_plan_is_a_table_with_a_header(
    tmp_path: Path, upstream: Registry, target: Registry, seeder: Seeder
) -> None:
    seed(seeder)
    shown = on_a_terminal("plan", "--source", upstream.url, "--target", target.url, cwd=tmp_path)
    rows = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in shown.splitlines()]
    assert rows[0].split() == ["ACTION", "TAG", "REASON"], shown
    assert rows[1].split()[:2] == ["create", "azureiotedge-agent:1.5.0"]
    assert "\x1b[32mcreate" in shown  # green
    assert rows[-1] == "6 create, 0 update, 0 hold, 0 skip"

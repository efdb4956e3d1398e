"""The run locks: one run at a time per target, across processes (a SQLite ledger's file
lock) and across hosts (PostgreSQL's session advisory lock).

A lock is checked against a second holder in this process, and against another process
that holds it and is then killed with SIGKILL: the operating system (flock) or the
database server (a dead session) lets go, with nothing to clean up. Also: writers to a
new SQLite ledger wait for each other, and a ledger that cannot be reached or written
makes taking the lock a one-line `LedgerError`.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirror.ledger import Ledger, LedgerError
from mirror.ledger.storage import RunLock
from mirror.ledger.triggers import TriggerQueue
from tests.support.postgres import PostgresServer
from tests.support.registry import free_port

TARGET = "http://127.0.0.1:5001"
OTHER_TARGET = "http://127.0.0.1:5002"
ROOT = Path(__file__).resolve().parents[2]

# Takes the run lock of argv[2] in the ledger argv[1], says whether it got it, and holds
# it until a line arrives on stdin (or it is killed).
_HOLDER = """
import sys
from mirror.ledger import Ledger

ledger = Ledger.open(sys.argv[1])
lock = ledger.run_lock(sys.argv[2])
print("held" if lock.acquire() else "busy", flush=True)
sys.stdin.readline()
lock.release()
ledger.close()
"""


class Holder:
    """A `python -c` process holding a target's run lock."""

    def __init__(self, location: str, target: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, location, target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        assert self.process.stdout is not None
        self.answer = self.process.stdout.readline().strip()

    def release(self) -> None:
        """Tell it to let go and exit."""
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=10) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@contextmanager
def held_elsewhere(location: str, target: str = TARGET) -> Iterator[Holder]:
    holder = Holder(location, target)
    try:
        assert holder.answer == "held", f"the holder process said {holder.answer!r}"
        yield holder
    finally:
        holder.close()


def acquire_soon(lock: RunLock, seconds: float = 10.0) -> bool:
    """Whether `lock` can be taken within `seconds` (a dead holder's lock is let go of
    by the server once it notices the connection closed)."""
    deadline = time.monotonic() + seconds
    while not lock.acquire():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- where the ledger lives -----------------------------------------------------------


@pytest.fixture(params=["file", "sqlite-url"])
def sqlite_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite ledger (a file path, or a SQLAlchemy URL): its run locks are files."""
    if request.param == "file":
        return str(tmp_path / "state" / "ledger.sqlite")
    return f"sqlite:///{tmp_path}/url-state/ledger.sqlite"


@pytest.fixture
def postgres_location(postgres: PostgresServer) -> str:
    return postgres.create_database()


@pytest.fixture(params=["file", pytest.param("postgresql", marks=pytest.mark.registry)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return str(tmp_path / "state" / "ledger.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


# --- both kinds of lock ---------------------------------------------------------------


def test_a_held_lock_refuses_a_second_holder_until_released(location: str) -> None:
    """Two ledgers opened on one location stand for two runs (on PostgreSQL: two
    connections, two sessions)."""
    with Ledger.open(location) as first, Ledger.open(location) as second:
        mine, theirs = first.run_lock(TARGET), second.run_lock(TARGET)
        assert mine.acquire() is True
        assert theirs.acquire() is False
        assert second.run_lock(TARGET).acquire() is False
        mine.release()
        assert theirs.acquire() is True
        assert mine.acquire() is False
        theirs.release()


def test_one_ledger_gives_one_holder(location: str) -> None:
    with Ledger.open(location) as ledger:
        first, second = ledger.run_lock(TARGET), ledger.run_lock(TARGET)
        assert first.acquire() is True
        assert second.acquire() is False
        first.release()
        assert second.acquire() is True
        second.release()


def test_different_targets_do_not_block_each_other(location: str) -> None:
    with Ledger.open(location) as first, Ledger.open(location) as second:
        mine, theirs = first.run_lock(TARGET), second.run_lock(OTHER_TARGET)
        assert mine.acquire() is True
        assert theirs.acquire() is True
        assert second.run_lock(TARGET).acquire() is False
        assert first.run_lock(OTHER_TARGET).acquire() is False
        mine.release()
        theirs.release()


def test_spellings_of_one_target_share_a_lock(location: str) -> None:
    with Ledger.open(location) as ledger:
        lock = ledger.run_lock("https://registry.example:5000/")
        assert lock.acquire() is True
        assert ledger.run_lock("registry.example:5000").acquire() is False
        lock.release()


def test_release_without_acquire_and_twice_is_harmless(location: str) -> None:
    with Ledger.open(location) as ledger:
        lock = ledger.run_lock(TARGET)
        lock.release()
        assert lock.acquire() is True
        lock.release()
        lock.release()
        assert ledger.run_lock(TARGET).acquire() is True


def test_a_lock_held_by_another_process_is_refused_until_it_exits(location: str) -> None:
    with held_elsewhere(location) as holder, Ledger.open(location) as ledger:
        assert ledger.run_lock(TARGET).acquire() is False
        assert ledger.run_lock(OTHER_TARGET).acquire() is True
        holder.release()
        assert acquire_soon(ledger.run_lock(TARGET))


def test_a_killed_holders_lock_is_free_again(location: str) -> None:
    """SIGKILL: no release, no clean-up code runs; the OS closes the lock file (flock
    goes with it) or the connection (the server ends the session and its locks)."""
    with held_elsewhere(location) as holder, Ledger.open(location) as ledger:
        lock = ledger.run_lock(TARGET)
        assert lock.acquire() is False
        holder.kill()
        assert acquire_soon(lock), "the killed process's run lock was never let go"
        again = Holder(location, TARGET)  # and now this process holds it
        again.close()
        assert again.answer == "busy"
        lock.release()


# --- SQLite -----------------------------------------------------------------------------


def test_a_sqlite_lock_is_a_file_beside_the_ledger(sqlite_location: str, tmp_path: Path) -> None:
    with Ledger.open(sqlite_location) as ledger:
        lock = ledger.run_lock(TARGET)
        assert lock.acquire() is True
        beside = sorted(p.name for p in tmp_path.rglob("*.lock"))
        assert len(beside) == 1
        assert beside[0].startswith("ledger.sqlite.")
        lock.release()
        # Taking the lock writes nothing into the ledger itself.
        assert ledger.recent_runs() == []


def test_a_sqlite_url_and_its_file_share_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(str(path)) as by_path, Ledger.open(f"sqlite:///{path}") as by_url:
        lock = by_path.run_lock(TARGET)
        assert lock.acquire() is True
        assert by_url.run_lock(TARGET).acquire() is False
        lock.release()


def test_a_sqlite_lock_across_processes(sqlite_location: str) -> None:
    with held_elsewhere(sqlite_location) as holder, Ledger.open(sqlite_location) as ledger:
        assert ledger.run_lock(TARGET).acquire() is False
        holder.kill()
        lock = ledger.run_lock(TARGET)
        assert lock.acquire() is True  # flock goes with the process: at once
        lock.release()


def test_a_writer_waits_while_another_sets_up_a_new_ledger(sqlite_location: str) -> None:
    """Writers to a SQLite ledger wait for each other (busy timeout, BEGIN IMMEDIATE),
    also while the ledger is new: here another connection holds the write lock of the
    new file, still in rollback-journal mode, as a process does while it creates the
    ledger and switches it to WAL. The queued trigger must wait for it, not fail.

    (Four processes queuing into one new ledger at once meet this now and then:
    `test_triggers.py::test_processes_queuing_the_same_keys_keep_each_once` fails
    with "database is locked" under load.)"""
    file = Path(sqlite_location.removeprefix("sqlite:///"))
    file.parent.mkdir(parents=True, exist_ok=True)
    other = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        done = threading.Timer(0.5, other.execute, ("COMMIT",))
        done.start()
        started = time.monotonic()
        try:
            with Ledger.open(sqlite_location) as ledger:
                queue = TriggerQueue(ledger, TARGET)
                queued = queue.put("feed:1.5.2", "release-feed", {}, "1.5.2", _now())
        except LedgerError as error:
            waited = time.monotonic() - started
            pytest.fail(
                f"{error} after {waited:.2f} s: opening the new ledger (PRAGMA "
                "journal_mode = WAL) failed at once instead of waiting for the other writer"
            )
        finally:
            done.join()
        assert queued is True
        assert time.monotonic() - started >= 0.4
    finally:
        other.close()


def test_a_ledger_that_cannot_be_written_cannot_lock(tmp_path: Path) -> None:
    """The ledger's directory would be under a regular file: one-line `LedgerError`."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file\n")
    location = str(blocker / "mirror" / "ledger.sqlite")
    with Ledger.open(location) as ledger, pytest.raises(LedgerError) as caught:
        ledger.run_lock(TARGET).acquire()
    message = str(caught.value)
    assert "\n" not in message
    assert "run lock" in message
    assert str(blocker) in message


# --- PostgreSQL ---------------------------------------------------------------------------


def test_an_advisory_lock_is_its_own_connection(postgres_location: str) -> None:
    """The lock's session is not the ledger's writing connection: recording a run while
    holding the lock works, and the lock outlives the write."""
    with Ledger.open(postgres_location) as ledger, Ledger.open(postgres_location) as other:
        lock = ledger.run_lock(TARGET)
        assert lock.acquire() is True
        run = ledger.record_sync(
            source="mcr.microsoft.com",
            target=TARGET,
            steps=[],
            written=[],
            started=_now(),
            finished=_now(),
        )
        assert [r.id for r in other.recent_runs()] == [run]
        assert other.run_lock(TARGET).acquire() is False
        lock.release()
        assert other.run_lock(TARGET).acquire() is True


def test_an_unreachable_database_cannot_lock() -> None:
    url = f"postgresql+psycopg://mirror@127.0.0.1:{free_port()}/nowhere"
    with Ledger.open(url) as ledger, pytest.raises(LedgerError) as caught:
        ledger.run_lock(TARGET).acquire()
    message = str(caught.value)
    assert "\n" not in message
    assert "run lock" in message


def _now() -> datetime:
    return datetime.now(UTC)

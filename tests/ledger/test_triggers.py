"""The service's trigger queue, kept in the ledger: on a SQLite file and on PostgreSQL.

A key is queued once; the holder of a target's run lock claims every pending trigger,
runs, and finishes them; triggers a dead holder left claimed are taken by the next one.
Several processes queuing and claiming at once are checked with real processes on one
ledger.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mirror.ledger import Ledger
from mirror.ledger.triggers import QueuedTrigger, TriggerQueue
from tests.support.postgres import PostgresServer

TARGET = "http://127.0.0.1:5001"
OTHER_TARGET = "http://127.0.0.1:5002"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
EVERYTHING: dict[str, Any] = {}
RELEASE = {"repositories": ["azureiotedge-agent"], "versions": ["1.5.2"]}


@pytest.fixture(params=["file", pytest.param("postgresql", marks=pytest.mark.registry)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the ledger lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "file":
        return str(tmp_path / "state" / "ledger.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def ledger(location: str) -> Iterator[Ledger]:
    with Ledger.open(location) as opened:
        yield opened


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def put(queue: TriggerQueue, key: str, minutes: int, scope: dict[str, Any] = EVERYTHING) -> bool:
    kind = key.partition(":")[0]
    return queue.put(key, kind, scope, f"because of {key}", at(minutes))


def keys(triggers: list[QueuedTrigger]) -> list[str]:
    """The triggers by their detail (which names their key)."""
    return [t.detail.removeprefix("because of ") for t in triggers]


def states(queue: TriggerQueue) -> list[tuple[str, str]]:
    """What waits in `queue`, oldest first: (key, state)."""
    waiting = queue.waiting()
    return list(zip(keys(waiting), [t.state for t in waiting], strict=True))


# --- queuing --------------------------------------------------------------------------


def test_a_key_queued_twice_is_kept_once(ledger: Ledger) -> None:
    queue = TriggerQueue(ledger, TARGET)
    assert put(queue, "github:delivery-1", 0, RELEASE) is True
    assert put(queue, "github:delivery-1", 1, RELEASE) is False
    waiting = queue.waiting()
    assert len(waiting) == 1
    (trigger,) = waiting
    assert (trigger.kind, trigger.scope, trigger.state) == ("github", RELEASE, "pending")
    assert trigger.received == at(0)


def test_a_key_finished_is_still_not_queued_again(ledger: Ledger) -> None:
    """A webhook delivered again after its run is a duplicate, not a new run."""
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "github:delivery-1", 0)
    queue.claim("worker-a")
    queue.finish("worker-a", None, at(5), "completed")
    assert put(queue, "github:delivery-1", 10) is False
    assert queue.waiting() == []


# --- claiming and finishing -----------------------------------------------------------


def test_claim_takes_every_pending_trigger_in_received_order(ledger: Ledger) -> None:
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "feed:b", 2, RELEASE)
    put(queue, "schedule:nightly:a", 0)
    put(queue, "watch:c", 1)
    claimed = queue.claim("worker-a")
    assert keys(claimed) == ["schedule:nightly:a", "watch:c", "feed:b"]
    assert [t.received for t in claimed] == [at(0), at(1), at(2)]
    assert {t.state for t in claimed} == {"claimed"}
    assert claimed[2].scope == RELEASE
    assert [(t.id, t.state) for t in queue.waiting()] == [(t.id, "claimed") for t in claimed]


def test_after_the_run_a_second_claim_gets_nothing(ledger: Ledger) -> None:
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "schedule:nightly:a", 0)
    put(queue, "feed:b", 1)
    assert len(queue.claim("worker-a")) == 2
    queue.finish("worker-a", "run-1", at(5), "completed")
    assert queue.claim("worker-a") == []
    assert queue.claim("worker-b") == []
    assert queue.waiting() == []


def test_an_empty_queue_claims_nothing(ledger: Ledger) -> None:
    queue = TriggerQueue(ledger, TARGET)
    assert queue.claim("worker-a") == []
    assert queue.waiting() == []


def test_triggers_queued_during_a_run_wait_for_the_next_claim(ledger: Ledger) -> None:
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "schedule:nightly:a", 0)
    first = queue.claim("worker-a")
    put(queue, "feed:b", 1)
    put(queue, "feed:c", 2)
    queue.finish("worker-a", "run-1", at(3), "completed")
    assert states(queue) == [("feed:b", "pending"), ("feed:c", "pending")]
    second = queue.claim("worker-a")
    assert keys(second) == ["feed:b", "feed:c"]
    assert not {t.id for t in first} & {t.id for t in second}


def test_finishing_pending_puts_the_triggers_back(ledger: Ledger) -> None:
    """An interrupted run gives its triggers back: the next claim runs them again."""
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "feed:a", 0)
    put(queue, "feed:b", 1)
    claimed = queue.claim("worker-a")
    queue.finish("worker-a", "run-1", at(2), "pending")
    assert [(t.id, t.state) for t in queue.waiting()] == [(t.id, "pending") for t in claimed]
    again = queue.claim("worker-b")
    assert [t.id for t in again] == [t.id for t in claimed]
    queue.finish("worker-b", "run-2", at(3), "completed")
    assert queue.waiting() == []


@pytest.mark.parametrize("state", ["completed", "failed"])
def test_finished_triggers_leave_the_queue(ledger: Ledger, state: str) -> None:
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "feed:a", 0)
    queue.claim("worker-a")
    queue.finish("worker-a", "run-1", at(1), state)
    assert queue.waiting() == []
    assert queue.claim("worker-a") == []


def test_finish_touches_only_the_claimers_triggers(ledger: Ledger) -> None:
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "feed:a", 0)
    queue.claim("worker-a")
    queue.finish("worker-b", "run-1", at(1), "completed")  # not worker-b's
    assert [t.state for t in queue.waiting()] == ["claimed"]


def test_a_dead_claimers_triggers_go_to_the_next_claimer(ledger: Ledger) -> None:
    """worker-a claimed and died without finishing: worker-b, the next holder of the run
    lock, claims them along with what is pending; worker-a's late finish changes nothing."""
    queue = TriggerQueue(ledger, TARGET)
    put(queue, "feed:a", 0)
    put(queue, "feed:b", 1)
    abandoned = queue.claim("worker-a")
    put(queue, "feed:c", 2)
    taken = queue.claim("worker-b")
    assert keys(taken) == ["feed:a", "feed:b", "feed:c"]
    assert {t.id for t in abandoned} < {t.id for t in taken}
    queue.finish("worker-a", "run-dead", at(3), "completed")
    assert [t.state for t in queue.waiting()] == ["claimed"] * 3
    queue.finish("worker-b", "run-2", at(4), "completed")
    assert queue.waiting() == []


# --- targets --------------------------------------------------------------------------


def test_two_targets_queues_do_not_see_each_other(ledger: Ledger) -> None:
    mine, theirs = TriggerQueue(ledger, TARGET), TriggerQueue(ledger, OTHER_TARGET)
    put(mine, "feed:mine-1", 0)
    put(theirs, "feed:theirs-1", 1)
    put(mine, "feed:mine-2", 2)
    assert keys(mine.waiting()) == ["feed:mine-1", "feed:mine-2"]
    assert keys(theirs.waiting()) == ["feed:theirs-1"]
    their_claim = theirs.claim("worker-theirs")
    assert keys(their_claim) == ["feed:theirs-1"]
    # Claiming here neither takes their pending triggers nor requeues their claimed ones.
    put(theirs, "feed:theirs-2", 3)
    assert keys(mine.claim("worker-mine")) == ["feed:mine-1", "feed:mine-2"]
    assert states(theirs) == [("feed:theirs-1", "claimed"), ("feed:theirs-2", "pending")]
    mine.finish("worker-mine", "run-1", at(4), "completed")
    assert mine.waiting() == []
    assert len(theirs.waiting()) == 2


def test_the_same_key_is_queued_for_each_target(ledger: Ledger) -> None:
    """Two mirrors sharing a ledger (each its own target) both see release 1.5.2 in the
    feed, and both queue `feed:azureiotedge-agent:1.5.2`: each must run once for it.
    The key is unique per queue (a queue is one target's), not across the ledger."""
    mine, theirs = TriggerQueue(ledger, TARGET), TriggerQueue(ledger, OTHER_TARGET)
    key = "feed:azureiotedge-agent:1.5.2"
    assert mine.put(key, "release-feed", RELEASE, "release 1.5.2", at(0)) is True
    queued = theirs.put(key, "release-feed", RELEASE, "release 1.5.2", at(0))
    assert queued is True, (
        f"the trigger {key!r} for {OTHER_TARGET} was dropped as a duplicate of the one "
        f"queued for {TARGET}: the queue deduplicates keys across targets"
    )
    assert keys(theirs.waiting()) == ["release 1.5.2"]


def test_spellings_of_one_target_share_a_queue(ledger: Ledger) -> None:
    put(TriggerQueue(ledger, "https://registry.example:5000/"), "feed:a", 0)
    assert keys(TriggerQueue(ledger, "registry.example:5000").waiting()) == ["feed:a"]


# --- several processes ----------------------------------------------------------------

_barrier: Any = None
_putting: Any = None


def _share(barrier: Any, putting: Any) -> None:
    """Pool initializer: the workers meet at one barrier; `putting` is set while
    triggers are still being queued."""
    global _barrier, _putting
    _barrier, _putting = barrier, putting


def _putter(location: str, worker: int) -> int:
    """Queue the same 20 keys as every other worker; how many were new here."""
    _barrier.wait(30)
    queued = 0
    with Ledger.open(location) as ledger:
        queue = TriggerQueue(ledger, TARGET)
        for index in range(20):
            queued += put(queue, f"feed:{index}", index + worker)
    return queued


def _racer(location: str, role: str) -> list[str]:
    """A claimer takes turns with the other the way the service's worker does: holding
    the target's run lock, claim, finish; until nothing waits and nothing more comes.
    The feeder queues 20 more triggers meanwhile. The trigger ids claimed."""
    _barrier.wait(30)
    claimed: list[str] = []
    with Ledger.open(location) as ledger:
        queue = TriggerQueue(ledger, TARGET)
        if role == "feeder":
            for index in range(20, 40):
                put(queue, f"feed:{index}", index)
                time.sleep(0.005)
            _putting.clear()
            return claimed
        deadline = time.monotonic() + 30
        while (_putting.is_set() or queue.waiting()) and time.monotonic() < deadline:
            lock = ledger.run_lock(TARGET)
            if not lock.acquire():
                time.sleep(0.001)
                continue
            try:
                claimed += [t.id for t in queue.claim(role)]
                queue.finish(role, None, datetime.now(UTC), "completed")
            finally:
                lock.release()
            time.sleep(0.001)
    return claimed


def _pool(context: Any, processes: int) -> Any:
    putting = context.Event()
    putting.set()
    return context.Pool(
        processes, initializer=_share, initargs=(context.Barrier(processes), putting)
    )


def test_processes_queuing_the_same_keys_keep_each_once(location: str) -> None:
    context = multiprocessing.get_context("fork")
    with _pool(context, 4) as pool:
        new = pool.starmap(_putter, [(location, worker) for worker in range(4)])
    assert sum(new) == 20
    with Ledger.open(location) as ledger:
        waiting = TriggerQueue(ledger, TARGET).waiting()
    assert sorted(keys(waiting)) == sorted(f"feed:{index}" for index in range(20))


def test_processes_racing_to_claim_share_the_triggers_without_overlap(location: str) -> None:
    """Two replicas race for 20 pending triggers while 20 more arrive, each claiming under
    the run lock as the service's worker does: every trigger is claimed exactly once.
    (Bare claims, without the lock, would overlap by design: a claim takes back what
    another claimer holds, as it would from a dead one.)"""
    with Ledger.open(location) as ledger:
        queue = TriggerQueue(ledger, TARGET)
        for index in range(20):
            put(queue, f"feed:{index}", index)
        pending = {t.id for t in queue.waiting()}
    assert len(pending) == 20
    context = multiprocessing.get_context("fork")
    with _pool(context, 3) as pool:
        first, second, _ = pool.starmap(
            _racer, [(location, "replica-a"), (location, "replica-b"), (location, "feeder")]
        )
    with Ledger.open(location) as ledger:
        queue = TriggerQueue(ledger, TARGET)
        assert queue.waiting() == []
        rows = ledger.read("SELECT id FROM mirror_triggers", {})
    everything = {str(row[0]) for row in rows}
    assert len(everything) == 40
    assert pending < everything
    assert not set(first) & set(second), "a trigger was claimed by both replicas"
    assert len(first) + len(second) == 40
    assert set(first) | set(second) == everything

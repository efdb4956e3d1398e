"""The service's queue of triggers, kept in the ledger so that every replica shares it.

A trigger (a schedule firing, a release seen in the feed, a webhook) is queued under a
key that names what it is (`github:<delivery id>`, `schedule:<job>:<fire time>`,
`feed:<repository>:<version>`): queuing the same key twice keeps one, so a webhook
delivered again, or the same release seen by two replicas, acts once. A webhook's
delivery id is in the ledger only once its trigger is (one transaction): a delivery
that failed before that can be sent again.

The process that holds a target's run lock claims every pending trigger of the target
(and any left claimed by a holder that died), runs once for all of them, then marks
them done with the run's id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mirror.ledger import queries
from mirror.ledger.book import Ledger, place
from mirror.ledger.timeline import moment, stamp


@dataclass(frozen=True, slots=True)
class QueuedTrigger:
    """A trigger in the queue: what kind, what it asks to look at, and why."""

    id: str
    kind: str
    scope: dict[str, Any]
    detail: str
    received: datetime
    state: str = "pending"


class TriggerQueue:
    """The queue of one target's triggers, in a ledger."""

    def __init__(self, ledger: Ledger, target: str) -> None:
        self._ledger = ledger
        self.target = place(target)

    def put(
        self, key: str, kind: str, scope: dict[str, Any], detail: str, received: datetime
    ) -> bool:
        """Queue a trigger; False when one with `key` was queued before (a duplicate)."""
        row = {
            "id": str(uuid.uuid4()),
            "dedupe_key": key,
            "target": self.target,
            "kind": kind,
            "scope": json.dumps(scope, sort_keys=True),
            "detail": detail,
            "received": stamp(received),
        }
        with self._ledger.write("queuing a trigger") as tx:
            return bool(tx.fetch(queries.ENQUEUE_TRIGGER, row))

    def claim(self, claimer: str) -> list[QueuedTrigger]:
        """Every pending trigger (and any a dead holder left claimed), now `claimer`'s.
        Call only while holding the target's run lock."""
        params = {"target": self.target, "claimer": claimer}
        with self._ledger.write("claiming triggers") as tx:
            tx.execute(queries.REQUEUE_ABANDONED, params)
            rows = tx.fetch(queries.CLAIM_PENDING, params)
        return sorted((_trigger(row, "claimed") for row in rows), key=lambda t: t.received)

    def finish(self, claimer: str, run_id: str | None, finished: datetime, state: str) -> None:
        """Mark `claimer`'s triggers `state` (`done`, `failed`), naming the run."""
        params = {
            "target": self.target,
            "claimer": claimer,
            "run_id": run_id,
            "finished": stamp(finished),
            "state": state,
        }
        with self._ledger.write("finishing triggers") as tx:
            tx.execute(queries.FINISH_CLAIMED, params)

    def waiting(self) -> list[QueuedTrigger]:
        """Triggers not yet done (pending, or claimed by a run under way), oldest first."""
        rows = self._ledger.read(queries.PENDING_TRIGGERS, {"target": self.target})
        return [_trigger(row[:5], str(row[5])) for row in rows]


def _trigger(row: tuple[Any, ...], state: str) -> QueuedTrigger:
    trigger_id, kind, scope, detail, received = row
    return QueuedTrigger(str(trigger_id), kind, json.loads(scope), detail, moment(received), state)

"""What the service tells about itself: the run under way, the last runs, the triggers
waiting, per repository every tag with its state (mirrored, held and why, pending)
from the ledger, and the last scheduled verification. `GET /status` serves it as JSON
and `GET /` as a page (`page`), from the same document, so both always show the same
tags and states.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mirror.ledger import Ledger
    from mirror.ledger.book import RunRecord, TagState
    from mirror.ledger.triggers import QueuedTrigger
    from mirror.service.worker import Current


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "started": _when(run.started),
        "finished": _when(run.finished),
        "outcome": run.outcome,
        "trigger": run.triggered_by,
        "tags": run.steps,
        "written": run.written,
        "drift": run.drift,
    }


def trigger_json(trigger: QueuedTrigger) -> dict[str, Any]:
    return {
        "kind": trigger.kind,
        "detail": trigger.detail,
        "received": _when(trigger.received),
        "state": trigger.state,
    }


def tag_json(state: TagState) -> dict[str, Any]:
    return {
        "tag": state.tag,
        "kind": state.kind or "other",
        "state": state.state,
        "digest": state.digest,
        "upstream": state.source_digest,
        "mirrored": _when(state.mirrored),
        "checked": _when(state.seen),
        "reason": state.reason,
    }


def current_json(current: Current | None) -> dict[str, Any] | None:
    if current is None:
        return None
    return {
        "started": _when(current.started),
        "scope": str(current.scope),
        "triggers": [trigger_json(t) for t in current.triggers],
    }


def document(
    *,
    about: dict[str, Any],
    ledger: Ledger,
    target: str,
    repositories: Sequence[str],
    current: Current | None,
    waiting: Sequence[QueuedTrigger],
    drift: Sequence[dict[str, Any]],
    verification: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document (see the module docstring)."""
    return {
        "service": about,
        "current": current_json(current),
        "last_runs": [run_json(r) for r in ledger.recent_runs(target=target, limit=10)],
        "waiting": [trigger_json(t) for t in waiting if t.state == "pending"],
        "repositories": [
            {
                "name": repository,
                "tags": [
                    tag_json(s)
                    for s in ledger.tag_states(repository, target=target)
                    if s.state != "skipped"
                ],
            }
            for repository in repositories
        ],
        "drift": list(drift),
        "verification": verification,
    }

"""A signed summary of every run, sent to the configured URLs (one message per run, not
per image): the tags written, held and failed.

Each message is JSON with a delivery id, and is signed with HMAC-SHA256 over the
timestamp and the body, so that a receiver can check where it came from and refuse a
replay:

    X-Mirror-Delivery: <uuid>
    X-Mirror-Timestamp: <unix seconds>
    X-Mirror-Signature: sha256=<hex of HMAC(secret, "<timestamp>.<body>")>

Sending happens on a thread of its own, retried with backoff; a receiver that is down
never holds up the next sync, and a full queue drops the oldest message (logged).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from mirror.logs import get_logger

if TYPE_CHECKING:
    from mirror.engine.run import RunReport

ATTEMPTS = 5
_QUEUE = 100


@dataclass(frozen=True, slots=True)
class Receiver:
    url: str
    secret: bytes | None


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def summary(report: RunReport, source: str, target: str) -> dict[str, Any]:
    """What a receiver is told about one run."""
    outcome = report.outcome
    steps = outcome.steps if outcome else []
    return {
        "run": report.run_id,
        "source": source,
        "target": target,
        "outcome": report.state,
        "trigger": report.triggered_by,
        "scope": str(report.scope),
        "started": report.started.isoformat(),
        "finished": report.finished.isoformat(),
        "written": [f"{w.repository}:{w.tag}" for w in (outcome.result.tags if outcome else [])],
        "held": [
            {"tag": f"{s.repository}:{s.tag}", "reason": s.reason}
            for s in steps
            if str(s.action) == "hold"
        ],
        "failed": [
            {"what": what, "error": why} for what, why in (outcome.failures if outcome else [])
        ]
        + ([{"what": "run", "error": str(report.error)}] if report.error else []),
    }


class Notifier:
    """Sends summaries to every receiver from a background thread."""

    def __init__(self, receivers: Sequence[Receiver], backoff: float = 1.0) -> None:
        self.receivers = tuple(receivers)
        self.backoff = backoff
        self._queue: queue.Queue[tuple[Receiver, bytes]] = queue.Queue(_QUEUE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        if self.receivers:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def send(self, message: dict[str, Any]) -> None:
        """Queue `message` for every receiver; returns at once."""
        body = json.dumps(message, sort_keys=True).encode()
        for receiver in self.receivers:
            try:
                self._queue.put_nowait((receiver, body))
            except queue.Full:
                dropped, _ = self._queue.get_nowait()
                get_logger().warning("notify.dropped", url=dropped.url)
                self._queue.put_nowait((receiver, body))

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10.0), headers={"User-Agent": "mirror"}) as client:
            while not self._stop.is_set():
                try:
                    receiver, body = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._deliver(client, receiver, body)

    def _deliver(self, client: httpx.Client, receiver: Receiver, body: bytes) -> None:
        delivery = str(uuid.uuid4())
        for attempt in range(1, ATTEMPTS + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Mirror-Delivery": delivery,
                "X-Mirror-Timestamp": timestamp,
            }
            if receiver.secret is not None:
                headers["X-Mirror-Signature"] = signature(receiver.secret, timestamp, body)
            try:
                answer = client.post(receiver.url, content=body, headers=headers)
                if answer.is_success:
                    self.sent += 1
                    return
                problem = f"HTTP {answer.status_code}"
            except httpx.HTTPError as error:
                problem = type(error).__name__
            if attempt < ATTEMPTS and self._stop.wait(self.backoff * 2 ** (attempt - 1)):
                break
        self.failed += 1
        get_logger().warning("notify.failed", url=receiver.url, delivery=delivery, error=problem)

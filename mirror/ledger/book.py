"""The `Ledger`: records every sync run, and answers questions from the records.

Writing: `record_sync` stores one run in one transaction (migrating the schema first
when the ledger is new or older). Reading: `history`, `at`, `specific_for`,
`source_record`, `recorded`, `drift_events` and `tags` (see the package docstring).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol

from mirror.errors import MirrorError
from mirror.governance.audit import Recorded
from mirror.governance.decide import rebuilt_from
from mirror.governance.versions import parse_tag
from mirror.ledger import queries
from mirror.ledger.schema import migrate
from mirror.ledger.storage import (
    Backend,
    LedgerError,
    Params,
    Row,
    RunLock,
    Transaction,
    open_backend,
)
from mirror.ledger.timeline import (
    Period,
    PointedAt,
    Side,
    SpecificResolver,
    Timelines,
    maybe_moment,
    moment,
    periods,
    stamp,
    timeline_order,
)


class Sighting(Protocol):
    """What a run decided about one tag, as the ledger records it."""

    @property
    def repository(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def source_digest(self) -> str | None: ...
    @property
    def target_digest(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def drift(self) -> bool: ...


class Write(Protocol):
    """A tag a run wrote, and the digest it wrote under it."""

    @property
    def repository(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def digest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Owed:
    """A provenance record a run built but did not attach (the push failed, or the run
    was stopped first): kept until a run finds the tag still at `digest` and attaches
    it as it was built, naming the run that wrote the tag, or finds the tag moved."""

    repository: str
    tag: str
    digest: str
    document: str  # the record's JSON


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """Upstream moved a mirrored specific tag: the mirror kept `target_digest`.

    Repeated sightings of the same change are one event, seen `runs` times.
    """

    repository: str
    tag: str
    target_digest: str | None
    source_digest: str | None
    first_seen: datetime
    last_seen: datetime
    runs: int


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One recorded run: where, when, how much, how it ended and what started it."""

    id: str
    source: str
    target: str
    started: datetime
    finished: datetime
    steps: int
    written: int
    drift: int
    outcome: str
    triggered_by: str


class _GuardedLock:
    """A run lock whose failures (an unreachable database) are `LedgerError`s."""

    def __init__(self, lock: RunLock, ledger: Ledger) -> None:
        self._lock = lock
        self._ledger = ledger

    def acquire(self) -> bool:
        with self._ledger._guard("taking the run lock"):
            return self._lock.acquire()

    def release(self) -> None:
        with self._ledger._guard("releasing the run lock"):
            self._lock.release()


@dataclass(frozen=True, slots=True)
class TagState:
    """Where a tag stands in the mirror by the latest records: the last decision about
    it (`action`, `reason`) and the last digest mirror wrote under it, and when."""

    tag: str
    kind: str | None
    action: str
    reason: str
    source_digest: str | None
    target_digest: str | None
    seen: datetime
    written: str | None = None
    mirrored: datetime | None = None

    @property
    def state(self) -> str:
        """`mirrored`, `held` (governance kept it back: see `reason`), `pending` (to be
        written) or `skipped` (the policy does not select it)."""
        if self.action == "hold":
            return "held"
        if self.action in ("create", "update"):
            done = self.mirrored is not None and self.mirrored >= self.seen
            return "mirrored" if done else "pending"
        return "mirrored" if self.target_digest or self.written else "skipped"

    @property
    def digest(self) -> str | None:
        """What the mirror holds under the tag, as last recorded."""
        if self.mirrored is not None and self.mirrored >= self.seen:
            return self.written
        return self.target_digest or self.written


def place(text: str) -> str:
    """How the ledger names a source or target, whatever spelling the user chose:
    `127.0.0.1:5000`, `http://127.0.0.1:5000/` and `HTTPS://127.0.0.1:5000` are one
    place (`RegistryLocation.name`), `oci:` paths absolute."""
    from mirror.transport.store import LayoutLocation, parse_location

    try:
        location = parse_location(text.rstrip("/"), insecure=True)
    except MirrorError:
        return text
    if isinstance(location, LayoutLocation):
        return f"oci:{location.path.resolve()}"
    return location.name


def _place(target: str | None) -> str | None:
    return None if target is None else place(target)


class Ledger:
    """The record of every sync run; open with `Ledger.open(location)`."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._ready = False

    @classmethod
    def open(cls, location: str | None = None) -> Ledger:
        """A SQLite file path, a SQLAlchemy URL, or None for the default file."""
        return cls(open_backend(location))

    @property
    def name(self) -> str:
        """The file, or the URL without its password."""
        return self._backend.name

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._backend.errors as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            reason = detail[0] if detail else type(exc).__name__
            raise LedgerError(f"ledger {self.name}: {what} failed: {reason}") from None

    def _fetch(self, sql: str, params: Params) -> list[Row]:
        with self._guard("reading"):
            self._ready = self._ready or self._backend.ready()
            return self._backend.fetch(sql, params) if self._ready else []

    def read(self, sql: str, params: Params) -> list[Row]:
        """Rows of one query (none from a ledger not yet written)."""
        return self._fetch(sql, params)

    @contextmanager
    def write(self, what: str) -> Iterator[Transaction]:
        """One write transaction, on a schema brought up to date first; a failure is one
        `LedgerError` saying `what` failed."""
        with self._guard(what), self._backend.transaction() as tx:
            migrate(tx)
            yield tx

    def check_writable(self) -> None:
        """Raise `LedgerError` unless a write transaction can be opened and committed
        (the schema brought up to date is all it writes)."""
        with self.write("checking that the ledger can be written"):
            return

    def run_lock(self, target: str) -> RunLock:
        """The lock that lets one run at a time write `target` (see `storage.RunLock`)."""
        return _GuardedLock(self._backend.run_lock(place(target)), self)

    # --- recording ----------------------------------------------------------------

    def record_sync(
        self,
        *,
        source: str,
        target: str,
        steps: Sequence[Sighting],
        written: Iterable[Write],
        started: datetime,
        finished: datetime,
        outcome: str = "completed",
        triggered_by: str = "cli",
        run_id: str | None = None,
        referrers: Iterable[Remembered] = (),
        owed: Iterable[Owed] = (),
        settled: Iterable[tuple[str, str]] = (),
    ) -> str:
        """Record one sync run in one transaction; return its id.

        `steps` are the run's decisions (one observation each: the digests it saw, the
        action and why, drift), `written` the tags it actually wrote; `outcome` how it
        ended (`completed`, `failed`, `interrupted`), `triggered_by` what started it;
        `referrers` what the run learned of the referrers of the subjects it surveyed;
        `owed` the provenance records still to attach after it, and `settled` the
        (repository, tag) whose record is owed no more.
        """
        run_id = run_id or str(uuid.uuid4())
        target_name = place(target)
        seen, done = stamp(started), stamp(finished)
        writes = [{"repository": w.repository, "tag": w.tag, "digest": w.digest} for w in written]
        run = {
            "id": run_id,
            "source": place(source),
            "target": target_name,
            "started": seen,
            "finished": done,
            "steps": len(steps),
            "written": len(writes),
            "drift": sum(1 for step in steps if step.drift),
            "outcome": outcome,
            "triggered_by": triggered_by,
        }
        common = {"run_id": run_id, "target": target_name}
        observations = [{**common, **_observation(step), "seen": seen} for step in steps]
        write_rows = [{**common, **write, "mirrored": done} for write in writes]
        with self.write("recording the run") as tx:
            tx.execute(queries.INSERT_RUN, run)
            tx.execute_many(queries.INSERT_OBSERVATION, observations)
            tx.execute_many(queries.INSERT_WRITE, write_rows)
            tx.execute_many(queries.REMEMBER_REFERRERS, _remembered(referrers, common, done))
            tx.execute_many(queries.SETTLE_PROVENANCE, _settled(settled, target_name))
            tx.execute_many(queries.OWE_PROVENANCE, _owed(owed, target_name, done))
        return run_id

    def provenance_owed(self, target: str) -> list[Owed]:
        """The provenance records earlier runs into `target` built but did not attach."""
        rows = self.read(queries.PROVENANCE_OWED, {"target": place(target)})
        return [Owed(str(r), str(t), str(d), str(doc)) for r, t, d, doc in rows]

    def referrer_memory(self, target: str) -> dict[tuple[str, str], dict[str, str]]:
        """What earlier runs learned of referrers in `target`: per (repository, root
        digest of a tag), each subject surveyed and its referrers' fingerprint."""
        memory: dict[tuple[str, str], dict[str, str]] = {}
        for repository, root, subject, fingerprint in self.read(
            queries.REFERRER_MEMORY, {"target": place(target)}
        ):
            memory.setdefault((str(repository), str(root)), {})[str(subject)] = str(fingerprint)
        return memory

    # --- questions ----------------------------------------------------------------

    def tag_states(self, repository: str, *, target: str | None = None) -> list[TagState]:
        """Every tag of `repository` the ledger has seen, with its latest decision and
        write, in version order."""
        params = {"repository": repository, "target": _place(target)}
        written = {
            str(tag): (str(digest), moment(when))
            for tag, digest, when in self._fetch(queries.LATEST_WRITES, params)
        }
        states = []
        for tag, action, reason, kind, source, held, seen in self._fetch(
            queries.LATEST_DECISIONS, params
        ):
            digest, mirrored = written.get(str(tag), (None, None))
            states.append(
                TagState(
                    str(tag), kind, action, reason, source, held, moment(seen), digest, mirrored
                )
            )
        return sorted(states, key=lambda state: parse_tag(state.tag).sort_key)

    def recent_runs(self, *, target: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The latest runs (of `target`), newest first."""
        rows = self._fetch(queries.RECENT_RUNS, {"target": _place(target), "limit": limit})
        return [_run_record(row) for row in rows]

    def history(
        self, repository: str, tag: str | None = None, *, target: str | None = None
    ) -> list[Period]:
        """What each tag (or `tag`) pointed to over time, tags in version order, each
        with its source periods then its target periods, oldest first."""
        target = _place(target)
        resolver = self._resolver(repository, target, ("source", "target"))
        found: list[Period] = []
        events = self._events(repository, tag, target)
        for (name, side), timeline in sorted(events.items(), key=timeline_order):
            found += [resolver.named(p) for p in periods(repository, name, side, timeline)]
        return found

    def at(
        self, repository: str, tag: str, when: datetime, *, target: str | None = None
    ) -> PointedAt | None:
        """What `tag` pointed to in the target (and upstream) at `when`, by the latest
        records at or before it; None if the ledger has none by then."""
        target = _place(target)
        params = {"repository": repository, "tag": tag, "target": target, "when": stamp(when)}
        looked = self._fetch(queries.LATEST_LOOK_BEFORE, params)
        written = self._fetch(queries.LATEST_WRITE_BEFORE, params)
        if not looked and not written:
            return None
        source_seen, source_digest, target_seen, target_digest = None, None, None, None
        if looked:
            source_seen, source_digest, target_digest = looked[0]
            target_seen = source_seen
        if written and (target_seen is None or written[0][0] >= target_seen):
            target_seen, target_digest = written[0]
        resolver = self._resolver(repository, target, ("source", "target"))
        return PointedAt(
            repository,
            tag,
            when,
            target_digest,
            maybe_moment(target_seen),
            source_digest,
            maybe_moment(source_seen),
            self._mirrored(params, target_digest),
            resolver.specific(tag, target_digest or source_digest),
        )

    def _mirrored(self, params: Params, digest: str | None) -> datetime | None:
        """When mirror last wrote `digest` under the tag, up to the moment asked about."""
        if digest is None:
            return None
        rows = self._fetch(queries.LAST_MIRRORED, {**params, "digest": digest})
        return maybe_moment(rows[0][0]) if rows else None

    def specific_for(
        self, repository: str, rolling_tag: str, *, target: str | None = None
    ) -> str | None:
        """The specific tag of the same line (and variant) whose recorded target digest
        is the rolling tag's latest recorded target digest: what `1.5` stands for."""
        target = _place(target)
        latest = self._record(repository, rolling_tag, target)
        if latest.target is None:
            return None
        return self._resolver(repository, target, ("target",)).specific(rolling_tag, latest.target)

    def source_record(self, repository: str, tag: str, *, target: str | None = None) -> str | None:
        """The latest upstream digest recorded for `tag`."""
        params = {"repository": repository, "tag": tag, "target": _place(target)}
        newest = self._newest(queries.NEWEST_SOURCE_DIGEST, params)
        return None if newest is None else newest[1]

    def recorded(
        self, repository: str, tags: Iterable[str] | None = None, *, target: str | None = None
    ) -> dict[str, Recorded]:
        """Per tag (default: every tag recorded), the latest upstream digest and the latest
        target digest recorded (observed in the target, or written there). Tags without
        a record are left out. One indexed look-up per tag and kind of record."""
        target = _place(target)
        names = self.tags(repository, target=target) if tags is None else list(tags)
        records = {name: self._record(repository, name, target) for name in names}
        return {name: record for name, record in records.items() if record != Recorded()}

    def _record(self, repository: str, tag: str, target: str | None) -> Recorded:
        params = {"repository": repository, "tag": tag, "target": target}
        source = self._newest(queries.NEWEST_SOURCE_DIGEST, params)
        held = self._newest(queries.NEWEST_TARGET_DIGEST, params)
        written = self._newest(queries.NEWEST_WRITE, params)
        if written is not None and (held is None or written[0] >= held[0]):
            held = written
        return Recorded(source[1] if source else None, held[1] if held else None)

    def _newest(self, query: str, params: Params) -> tuple[str, str] | None:
        """The (time, digest) row a `NEWEST_*` query finds, if any."""
        rows = self._fetch(query, params)
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def drift_events(
        self, repository: str | None = None, *, target: str | None = None
    ) -> list[DriftEvent]:
        """Every drift seen (each change once, with how many runs saw it), oldest first."""
        params = {"repository": repository, "target": _place(target)}
        rows = self._fetch(queries.DRIFT_EVENTS, params)
        return [
            DriftEvent(repo, tag, kept, upstream, moment(first), moment(last), int(runs))
            for repo, tag, kept, upstream, first, last, runs in rows
        ]

    def tags(self, repository: str, *, target: str | None = None) -> list[str]:
        """Every tag of `repository` the ledger holds a digest for, in version order."""
        rows = self._fetch(queries.TAGS, {"repository": repository, "target": _place(target)})
        return sorted({str(row[0]) for row in rows}, key=lambda t: parse_tag(t).sort_key)

    def _events(self, repository: str, tag: str | None, target: str | None) -> Timelines:
        """Per (tag, side), the records in time order: (time, digest or None, written)."""
        params = {"repository": repository, "tag": tag, "target": target}
        events: Timelines = {}
        for name, seen, source_digest, target_digest in self._fetch(queries.LOOKS, params):
            events.setdefault((name, "source"), []).append((seen, source_digest, False))
            events.setdefault((name, "target"), []).append((seen, target_digest, False))
        for name, mirrored, digest in self._fetch(queries.WRITES, params):
            events.setdefault((name, "target"), []).append((mirrored, digest, True))
        for timeline in events.values():
            timeline.sort(key=lambda event: (event[0], event[2]))
        return events

    def _resolver(
        self, repository: str, target: str | None, sides: Sequence[Side]
    ) -> SpecificResolver:
        """Names the specific tags of rolling tags, from the records of `sides`."""

        def holding(digest: str) -> set[str]:
            params = {"repository": repository, "target": target, "digest": digest}
            tags: set[str] = set()
            if "source" in sides:
                tags |= {str(r[0]) for r in self._fetch(queries.TAGS_WITH_SOURCE_DIGEST, params)}
            if "target" in sides:
                tags |= {str(r[0]) for r in self._fetch(queries.TAGS_WITH_TARGET_DIGEST, params)}
            return tags

        return SpecificResolver(holding)


class Remembered(Protocol):
    """What a run learned of one subject's referrers (see `engine.referrers`)."""

    @property
    def repository(self) -> str: ...
    @property
    def root(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...


def _remembered(
    states: Iterable[Remembered], common: dict[str, str], checked: str
) -> list[dict[str, object]]:
    return [
        {
            "target": common["target"],
            "repository": s.repository,
            "root": s.root,
            "subject": s.subject,
            "fingerprint": s.fingerprint,
            "checked": checked,
        }
        for s in states
    ]


def _settled(settled: Iterable[tuple[str, str]], target: str) -> list[dict[str, object]]:
    return [{"target": target, "repository": r, "tag": t} for r, t in settled]


def _owed(owed: Iterable[Owed], target: str, since: str) -> list[dict[str, object]]:
    return [
        {
            "target": target,
            "repository": o.repository,
            "tag": o.tag,
            "digest": o.digest,
            "document": o.document,
            "since": since,
        }
        for o in owed
    ]


def _run_record(row: Row) -> RunRecord:
    run_id, source, target, started, finished, steps, written, drift, outcome, by = row
    return RunRecord(
        str(run_id),
        source,
        target,
        moment(started),
        moment(finished),
        int(steps),
        int(written),
        int(drift),
        outcome or "completed",
        by or "cli",
    )


def _observation(step: Sighting) -> dict[str, object]:
    """One step as a row. A derived tag (`1.5.3-rebuild-20260901`) exists only in the
    target: its content is upstream's rebuild of the original tag, recorded there."""
    derived = step.target_digest is None and rebuilt_from(step.tag) is not None
    return {
        "repository": step.repository,
        "tag": step.tag,
        "source_digest": None if derived else step.source_digest,
        "target_digest": step.target_digest,
        "action": str(step.action),
        "reason": step.reason,
        "kind": step.kind,
        "drift": int(step.drift),
    }

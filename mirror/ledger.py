"""The ledger: every tag -> digest observation of every sync, kept to answer questions later.

`mirror sync` records each run here (`Ledger.record_sync`): per tag, what the source and
the target pointed at when the run looked, what it decided and why, which tags it wrote,
and drift (upstream rebuilt a specific tag that is already mirrored). From those records
the ledger answers:

- `history`: what a tag pointed to over time, upstream and in the mirror;
- `at`: what it pointed to at a given moment ("what was 1.5 on 2026-03-01?");
- `specific_for`: the specific tag a rolling tag stands for (`mirror rewrite --pin specific`);
- `drift_events`, `recorded`, `source_record`: what `mirror tags audit` compares against.

Storage is a SQLite file by default (`$XDG_STATE_HOME/mirror/ledger.sqlite`), through the
standard library, in WAL mode with a busy timeout so concurrent runs wait for each other
instead of failing. A location with a URL scheme (`postgresql+psycopg://...`,
`sqlite:///...`) goes through SQLAlchemy Core, imported only then. Both run the same SQL
text with `:named` parameters over portable DDL: text ids (uuid4 run ids), timestamps as
fixed-width ISO-8601 UTC text (so they sort as they compare), no autoincrement, and a
schema-version table.

A run's observations are dated by its start, its writes by its end: the record says a
tag was absent or held a digest when the run looked, and held the written digest once
the run was over.
"""

# Every query below is assembled from constant fragments; values are always bound
# parameters, never formatted into the text.
# ruff: noqa: S608

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from mirror.errors import MirrorError
from mirror.reference import ImageReference
from mirror.versions import Tag, TagKind, parse_tag

if TYPE_CHECKING:
    from mirror.plan import TagStep, TagWrite

SCHEMA_VERSION = 1
BUSY_SECONDS = 60.0
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

Side = Literal["source", "target"]
Row = tuple[Any, ...]
Params = Mapping[str, object]
_Timelines = dict[tuple[str, "Side"], list[tuple[str, str | None, bool]]]


class LedgerError(MirrorError):
    """The ledger could not be opened, read or written."""


# --- what the ledger answers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A stretch of time during which a tag pointed at one digest, on one side.

    `first_seen`/`last_seen` are the first and last records of it; `mirrored` is when
    mirror wrote it under the tag (target side; None when found there already);
    `specific` names, for a rolling tag, the specific tag of its line with that content.
    """

    repository: str
    tag: str
    side: Side
    digest: str
    first_seen: datetime
    last_seen: datetime
    mirrored: datetime | None = None
    specific: str | None = None


@dataclass(frozen=True, slots=True)
class PointedAt:
    """What a tag pointed to at `when`, by the latest records at or before it.

    A digest of None means the tag was recorded absent on that side (or, when its
    `seen` is None too, never recorded). `mirrored` is when mirror wrote the target's
    content under the tag; `specific` is the specific tag of the line holding the
    target's content (else the source's).
    """

    repository: str
    tag: str
    when: datetime
    target_digest: str | None
    target_seen: datetime | None
    source_digest: str | None
    source_seen: datetime | None
    mirrored: datetime | None = None
    specific: str | None = None


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
class Recorded:
    """The latest digests recorded for a tag: upstream, and in the target."""

    source: str | None = None
    target: str | None = None


# --- time and names -------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC text; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _maybe_time(text: str | None) -> datetime | None:
    return None if text is None else _time(text)


def default_location(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/mirror/ledger.sqlite`, else `~/.local/state/mirror/ledger.sqlite`."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mirror" / "ledger.sqlite"


def place(text: str) -> str:
    """How the ledger names a source or target, whatever spelling the user chose:
    `127.0.0.1:5000` and `http://127.0.0.1:5000` are one place, `oci:` paths absolute."""
    from mirror.transport.store import LayoutLocation, parse_location

    try:
        location = parse_location(text)
    except MirrorError:
        return text
    if isinstance(location, LayoutLocation):
        return f"oci:{location.path.resolve()}"
    return str(location)


# --- storage --------------------------------------------------------------------------


class _Transaction(Protocol):
    def execute(self, sql: str, params: Params | None = None) -> None: ...

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None: ...

    def fetch(self, sql: str, params: Params | None = None) -> list[Row]: ...


class _Backend(Protocol):
    name: str
    errors: tuple[type[BaseException], ...]

    def ready(self) -> bool: ...

    def transaction(self) -> AbstractContextManager[_Transaction]: ...

    def fetch(self, sql: str, params: Params) -> list[Row]: ...

    def close(self) -> None: ...


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._connection.execute(sql, params or {})

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self._connection.executemany(sql, rows)

    def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        return self._connection.execute(sql, params or {}).fetchall()


class _SqliteFile:
    """A SQLite file through the standard library, connected on first use.

    Reading a ledger that does not exist finds nothing and creates nothing; the first
    write creates the file and its directories.
    """

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
            )
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            self._connection = connection
        return self._connection

    def ready(self) -> bool:
        if self._connection is None and not self.path.exists():
            return False
        found = self._connect().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'mirror_schema'"
        )
        return found.fetchone() is not None

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTransaction(connection)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def fetch(self, sql: str, params: Params) -> list[Row]:
        return self._connect().execute(sql, params).fetchall()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _SqlAlchemyTransaction:
    def __init__(self, connection: Any, text: Callable[[str], Any]) -> None:
        self._connection = connection
        self._text = text

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._connection.execute(self._text(sql), dict(params or {}))

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self._connection.execute(self._text(sql), [dict(row) for row in rows])

    def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        result = self._connection.execute(self._text(sql), dict(params or {}))
        return [tuple(row) for row in result]


class _SqlAlchemy:
    """Any database SQLAlchemy reaches by URL (PostgreSQL for a shared ledger)."""

    def __init__(self, url: str) -> None:
        try:
            import sqlalchemy
        except ImportError:
            raise LedgerError(
                "a ledger URL needs SQLAlchemy (pip install sqlalchemy) and the database's "
                "driver; a plain file path needs neither"
            ) from None
        self._sa = sqlalchemy
        self.errors: tuple[type[BaseException], ...] = (sqlalchemy.exc.SQLAlchemyError, OSError)
        try:
            parsed = sqlalchemy.engine.make_url(url)
            self.name = parsed.render_as_string(hide_password=True)
            self._file = _sqlite_path(parsed)
            self.engine = sqlalchemy.create_engine(parsed, **_engine_options(parsed))
        except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
            raise LedgerError(f"ledger URL {url.rpartition('@')[2]!r}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            _immediate_transactions(sqlalchemy, self.engine)

    def ready(self) -> bool:
        if self._file is not None and not self._file.exists():
            return False
        return bool(self._sa.inspect(self.engine).has_table("mirror_schema"))

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        if self._file is not None:
            self._file.parent.mkdir(parents=True, exist_ok=True)
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                # Concurrent first runs would race on CREATE TABLE IF NOT EXISTS.
                connection.execute(self._sa.text("SELECT pg_advisory_xact_lock(8151)"))
            yield _SqlAlchemyTransaction(connection, self._sa.text)

    def fetch(self, sql: str, params: Params) -> list[Row]:
        with self.engine.connect() as connection:
            return _SqlAlchemyTransaction(connection, self._sa.text).fetch(sql, params)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_path(url: Any) -> Path | None:
    """The file of a `sqlite:///PATH` URL (None for other databases and `:memory:`)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _engine_options(url: Any) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": BUSY_SECONDS}}
    return {"pool_pre_ping": True}


def _immediate_transactions(sqlalchemy: Any, engine: Any) -> None:
    """SQLite through SQLAlchemy: WAL, and BEGIN IMMEDIATE so writers queue up."""

    def connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        connection.execute("PRAGMA journal_mode = WAL")

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(engine, "connect", connect)
    sqlalchemy.event.listen(engine, "begin", begin)


# --- the schema -----------------------------------------------------------------------

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mirror_schema (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS mirror_runs (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        steps INTEGER NOT NULL,
        written INTEGER NOT NULL,
        drift INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS mirror_observations (
        run_id TEXT NOT NULL REFERENCES mirror_runs (id),
        target TEXT NOT NULL,
        repository TEXT NOT NULL,
        tag TEXT NOT NULL,
        seen TEXT NOT NULL,
        source_digest TEXT,
        target_digest TEXT,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        kind TEXT,
        drift INTEGER NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS mirror_observations_by_tag
        ON mirror_observations (repository, tag, seen)""",
    """CREATE INDEX IF NOT EXISTS mirror_observations_by_source
        ON mirror_observations (repository, source_digest)""",
    """CREATE INDEX IF NOT EXISTS mirror_observations_by_target
        ON mirror_observations (repository, target_digest)""",
    """CREATE TABLE IF NOT EXISTS mirror_writes (
        run_id TEXT NOT NULL REFERENCES mirror_runs (id),
        target TEXT NOT NULL,
        repository TEXT NOT NULL,
        tag TEXT NOT NULL,
        digest TEXT NOT NULL,
        mirrored TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS mirror_writes_by_tag
        ON mirror_writes (repository, tag, mirrored)""",
    """CREATE INDEX IF NOT EXISTS mirror_writes_by_digest
        ON mirror_writes (repository, digest)""",
)

_INSERT_RUN = """INSERT INTO mirror_runs
    (id, source, target, started, finished, steps, written, drift)
    VALUES (:id, :source, :target, :started, :finished, :steps, :written, :drift)"""
_INSERT_OBSERVATION = """INSERT INTO mirror_observations
    (run_id, target, repository, tag, seen, source_digest, target_digest, action, reason,
     kind, drift)
    VALUES (:run_id, :target, :repository, :tag, :seen, :source_digest, :target_digest,
     :action, :reason, :kind, :drift)"""
_INSERT_WRITE = """INSERT INTO mirror_writes (run_id, target, repository, tag, digest, mirrored)
    VALUES (:run_id, :target, :repository, :tag, :digest, :mirrored)"""

# A row the run looked at (the selector's skips carry no digest on either side).
_LOOKED = "(source_digest IS NOT NULL OR target_digest IS NOT NULL)"


def _ensure_schema(tx: _Transaction) -> None:
    for statement in _SCHEMA:
        tx.execute(statement)
    versions = [int(row[0]) for row in tx.fetch("SELECT version FROM mirror_schema")]
    if not versions:
        tx.execute("INSERT INTO mirror_schema (version) VALUES (:version)", {"version": 1})
    elif max(versions) > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger has schema version {max(versions)}; this mirror knows up to "
            f"{SCHEMA_VERSION}: upgrade mirror"
        )


def _filters(**values: str | None) -> tuple[str, dict[str, str]]:
    """`AND column = :column` for each value given (no `:x IS NULL` tricks: PostgreSQL
    cannot type an untyped NULL parameter)."""
    given = {column: value for column, value in values.items() if value is not None}
    return "".join(f" AND {column} = :{column}" for column in given), given


# --- the ledger -----------------------------------------------------------------------


class Ledger:
    """The record of every sync run; open with `Ledger.open(location)`."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend
        self._ready = False

    @classmethod
    def open(cls, location: str | None = None) -> Ledger:
        """A SQLite file path, a SQLAlchemy URL, or None for the default file."""
        if location is None:
            return cls(_SqliteFile(default_location()))
        if _URL.match(location):
            return cls(_SqlAlchemy(location))
        return cls(_SqliteFile(Path(location).expanduser()))

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

    # --- recording ----------------------------------------------------------------

    def record_sync(
        self,
        *,
        source: str,
        target: str,
        steps: Sequence[TagStep],
        written: Iterable[TagWrite],
        started: datetime,
        finished: datetime,
    ) -> str:
        """Record one sync run in one transaction; return its id.

        `steps` are the run's decisions (one observation each: the digests it saw, the
        action and why, drift), `written` the tags it actually wrote.
        """
        run_id = str(uuid.uuid4())
        target_name = place(target)
        seen, done = stamp(started), stamp(finished)
        writes = [
            {"repository": w.repository, "tag": w.tag, "digest": w.manifest.digest} for w in written
        ]
        run = {
            "id": run_id,
            "source": place(source),
            "target": target_name,
            "started": seen,
            "finished": done,
            "steps": len(steps),
            "written": len(writes),
            "drift": sum(1 for step in steps if step.drift),
        }
        common = {"run_id": run_id, "target": target_name}
        observations = [{**common, **_observation(step), "seen": seen} for step in steps]
        write_rows = [{**common, **write, "mirrored": done} for write in writes]
        with self._guard("recording the run"), self._backend.transaction() as tx:
            _ensure_schema(tx)
            tx.execute(_INSERT_RUN, run)
            tx.execute_many(_INSERT_OBSERVATION, observations)
            tx.execute_many(_INSERT_WRITE, write_rows)
        return run_id

    # --- questions ----------------------------------------------------------------

    def history(
        self, repository: str, tag: str | None = None, *, target: str | None = None
    ) -> list[Period]:
        """What each tag (or `tag`) pointed to over time, tags in version order, each
        with its source periods then its target periods, oldest first."""
        target = _place(target)
        resolver = _SpecificResolver(self, repository, target, sides=("source", "target"))
        periods: list[Period] = []
        events = self._events(repository, tag, target)
        for (name, side), timeline in sorted(events.items(), key=_timeline_order):
            periods += [
                _with_specific(p, resolver) for p in _periods(repository, name, side, timeline)
            ]
        return periods

    def at(
        self, repository: str, tag: str, when: datetime, *, target: str | None = None
    ) -> PointedAt | None:
        """What `tag` pointed to in the target (and upstream) at `when`, by the latest
        records at or before it; None if the ledger has none by then."""
        target = _place(target)
        where, params = _filters(repository=repository, tag=tag, target=target)
        params["when"] = stamp(when)
        looked = self._fetch(
            "SELECT seen, source_digest, target_digest FROM mirror_observations "
            f"WHERE {_LOOKED}{where} AND seen <= :when ORDER BY seen DESC LIMIT 1",
            params,
        )
        written = self._fetch(
            f"SELECT mirrored, digest FROM mirror_writes WHERE 1 = 1{where} "
            "AND mirrored <= :when ORDER BY mirrored DESC LIMIT 1",
            params,
        )
        if not looked and not written:
            return None
        source_seen, source_digest, target_seen, target_digest = None, None, None, None
        if looked:
            source_seen, source_digest, target_digest = looked[0]
            target_seen = source_seen
        if written and (target_seen is None or written[0][0] >= target_seen):
            target_seen, target_digest = written[0]
        resolver = _SpecificResolver(self, repository, target, sides=("source", "target"))
        return PointedAt(
            repository,
            tag,
            when,
            target_digest,
            _maybe_time(target_seen),
            source_digest,
            _maybe_time(source_seen),
            self._mirrored(repository, tag, target_digest, params["when"], target),
            resolver.specific(tag, target_digest or source_digest),
        )

    def _mirrored(
        self, repository: str, tag: str, digest: str | None, until: str, target: str | None
    ) -> datetime | None:
        """When mirror last wrote `digest` under the tag, up to `until`."""
        if digest is None:
            return None
        where, params = _filters(repository=repository, tag=tag, digest=digest, target=target)
        rows = self._fetch(
            f"SELECT MAX(mirrored) FROM mirror_writes WHERE mirrored <= :until{where}",
            {**params, "until": until},
        )
        return _maybe_time(rows[0][0]) if rows else None

    def specific_for(
        self, repository: str, rolling_tag: str, *, target: str | None = None
    ) -> str | None:
        """The specific tag of the same line (and variant) whose recorded target digest
        is the rolling tag's latest recorded target digest: what `1.5` stands for."""
        target = _place(target)
        latest = self._record(repository, rolling_tag, target)
        if latest.target is None:
            return None
        resolver = _SpecificResolver(self, repository, target, sides=("target",))
        return resolver.specific(rolling_tag, latest.target)

    def source_record(self, repository: str, tag: str, *, target: str | None = None) -> str | None:
        """The latest upstream digest recorded for `tag`."""
        where, params = _filters(repository=repository, tag=tag, target=_place(target))
        newest = self._newest("mirror_observations", "seen", "source_digest", where, params)
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
        where, params = _filters(repository=repository, tag=tag, target=target)
        source = self._newest("mirror_observations", "seen", "source_digest", where, params)
        held = self._newest("mirror_observations", "seen", "target_digest", where, params)
        written = self._newest("mirror_writes", "mirrored", "digest", where, params)
        if written is not None and (held is None or written[0] >= held[0]):
            held = written
        return Recorded(source[1] if source else None, held[1] if held else None)

    def _newest(
        self, table: str, time: str, column: str, where: str, params: Params
    ) -> tuple[str, str] | None:
        """The latest (time, value) of a column that is not NULL."""
        rows = self._fetch(
            f"SELECT {time}, {column} FROM {table} WHERE {column} IS NOT NULL{where} "
            f"ORDER BY {time} DESC LIMIT 1",
            params,
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def drift_events(
        self, repository: str | None = None, *, target: str | None = None
    ) -> list[DriftEvent]:
        """Every drift seen (each change once, with how many runs saw it), oldest first."""
        where, params = _filters(repository=repository, target=_place(target))
        rows = self._fetch(
            "SELECT repository, tag, target_digest, source_digest, MIN(seen) AS first_seen, "
            f"MAX(seen), COUNT(*) FROM mirror_observations WHERE drift = 1{where} "
            "GROUP BY repository, tag, target_digest, source_digest ORDER BY first_seen",
            params,
        )
        return [
            DriftEvent(repo, tag, kept, upstream, _time(first), _time(last), int(runs))
            for repo, tag, kept, upstream, first, last, runs in rows
        ]

    def tags(self, repository: str, *, target: str | None = None) -> list[str]:
        """Every tag of `repository` the ledger holds a digest for, in version order."""
        where, params = _filters(repository=repository, target=_place(target))
        rows = self._fetch(
            f"SELECT DISTINCT tag FROM mirror_observations WHERE {_LOOKED}{where} "
            f"UNION SELECT DISTINCT tag FROM mirror_writes WHERE 1 = 1{where}",
            params,
        )
        return sorted({str(row[0]) for row in rows}, key=lambda t: parse_tag(t).sort_key)

    def _events(self, repository: str, tag: str | None, target: str | None) -> _Timelines:
        """Per (tag, side), the records in time order: (time, digest or None, written)."""
        where, params = _filters(repository=repository, tag=tag, target=target)
        looked = self._fetch(
            "SELECT tag, seen, source_digest, target_digest FROM mirror_observations "
            f"WHERE {_LOOKED}{where}",
            params,
        )
        written = self._fetch(
            f"SELECT tag, mirrored, digest FROM mirror_writes WHERE 1 = 1{where}", params
        )
        events: _Timelines = {}
        for name, seen, source_digest, target_digest in looked:
            events.setdefault((name, "source"), []).append((seen, source_digest, False))
            events.setdefault((name, "target"), []).append((seen, target_digest, False))
        for name, mirrored, digest in written:
            events.setdefault((name, "target"), []).append((mirrored, digest, True))
        for timeline in events.values():
            timeline.sort(key=lambda event: (event[0], event[2]))
        return events

    def _holding(
        self, repository: str, digest: str, target: str | None, sides: Sequence[Side]
    ) -> set[str]:
        """The tags of `repository` recorded with `digest` on `sides` (indexed by digest)."""
        where, params = _filters(repository=repository, target=target)
        params["digest"] = digest
        queries = []
        if "source" in sides:
            queries.append(
                f"SELECT DISTINCT tag FROM mirror_observations WHERE source_digest = :digest{where}"
            )
        if "target" in sides:
            queries.append(
                f"SELECT DISTINCT tag FROM mirror_observations WHERE target_digest = :digest{where}"
            )
            queries.append(f"SELECT DISTINCT tag FROM mirror_writes WHERE digest = :digest{where}")
        return {str(row[0]) for row in self._fetch(" UNION ".join(queries), params)}


def _place(target: str | None) -> str | None:
    return None if target is None else place(target)


def _observation(step: TagStep) -> dict[str, object]:
    """One step as a row. A derived tag (`1.5.3-rebuild-20260901`) exists only in the
    target: its content is upstream's rebuild of the original tag, recorded there."""
    from mirror.governance import rebuilt_from

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


def _timeline_order(item: tuple[tuple[str, Side], object]) -> tuple[object, ...]:
    (name, side), _ = item
    return (parse_tag(name).sort_key, side)


def _periods(
    repository: str, tag: str, side: Side, timeline: Iterable[tuple[str, str | None, bool]]
) -> Iterator[Period]:
    """Consecutive records of one digest, merged; a record of absence ends a period."""
    digest: str | None = None
    first = last = ""
    mirrored: str | None = None
    for moment, held, written in timeline:
        if digest is not None and held == digest:
            last = moment
            mirrored = mirrored or (moment if written else None)
            continue
        if digest is not None:
            yield Period(
                repository, tag, side, digest, _time(first), _time(last), _maybe_time(mirrored)
            )
        digest, first, last = held, moment, moment
        mirrored = moment if written else None
    if digest is not None:
        yield Period(
            repository, tag, side, digest, _time(first), _time(last), _maybe_time(mirrored)
        )


class _SpecificResolver:
    """Which specific tag of a rolling tag's line holds a digest, by the ledger's records
    (cached per digest: a history asks once per digest, not once per period)."""

    def __init__(
        self, ledger: Ledger, repository: str, target: str | None, sides: Sequence[Side]
    ) -> None:
        self._ledger = ledger
        self._repository = repository
        self._target = target
        self._sides = sides
        self._by_digest: dict[str, set[str]] = {}

    def specific(self, tag: str, digest: str | None) -> str | None:
        rolling = parse_tag(tag)
        if rolling.kind is not TagKind.ROLLING or digest is None:
            return None
        if digest not in self._by_digest:
            self._by_digest[digest] = self._ledger._holding(
                self._repository, digest, self._target, self._sides
            )
        candidates = [parse_tag(name) for name in self._by_digest[digest]]
        matching = [c for c in candidates if _same_family(rolling, c)]
        newest = max(matching, key=lambda c: c.sort_key, default=None)
        return None if newest is None else newest.text


def _same_family(rolling: Tag, candidate: Tag) -> bool:
    return (
        candidate.kind is TagKind.SPECIFIC
        and candidate.line == rolling.line
        and candidate.arch == rolling.arch
        and candidate.debug == rolling.debug
    )


def _with_specific(period: Period, resolver: _SpecificResolver) -> Period:
    specific = resolver.specific(period.tag, period.digest)
    if specific is None:
        return period
    return Period(
        period.repository,
        period.tag,
        period.side,
        period.digest,
        period.first_seen,
        period.last_seen,
        period.mirrored,
        specific,
    )


__all__ = [
    "DriftEvent",
    "Ledger",
    "LedgerError",
    "Period",
    "PointedAt",
    "Recorded",
    "default_location",
    "place",
    "stamp",
]


@dataclass
class LedgerLookup:
    """A `VersionLookup` (see `mirror.deployment.rewrite`) answered from what earlier
    syncs recorded: `mirror rewrite --offline --pin specific|digest` needs no registry.

    `source.repository` is the mirrored repository's name as synced; `target` the
    sync's target (None: any target).
    """

    ledger: Ledger
    target: str | None = None

    def specific_tag(self, source: ImageReference) -> str | None:
        if source.tag is None:
            return None
        return self.ledger.specific_for(source.repository, source.tag, target=self.target)

    def index_digest(self, source: ImageReference) -> str | None:
        if source.digest is not None:
            return source.digest
        if source.tag is None:
            return None
        found = self.ledger.recorded(source.repository, [source.tag], target=self.target)
        record = found.get(source.tag)
        return record.target if record is not None else None

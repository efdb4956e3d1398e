"""Where the ledger is kept: a SQLite file through the standard library, or any database
SQLAlchemy reaches by URL (PostgreSQL for a ledger shared by several mirrors).

Both run the same SQL text with `:named` parameters (see `queries`). SQLite runs in WAL
mode with a busy timeout and `BEGIN IMMEDIATE`, so concurrent runs wait for each other
instead of failing; SQLAlchemy is imported only for a URL. A reading command on a
ledger that does not exist finds nothing and creates nothing; one this process may not
write (file or directory modes) is opened read-only.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from mirror.errors import MirrorError

BUSY_SECONDS = 60.0
_BUSY_TIMEOUT = "PRAGMA busy_timeout = 60000"  # BUSY_SECONDS, in milliseconds
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

Row = tuple[Any, ...]
Params = Mapping[str, object]


class LedgerError(MirrorError):
    """The ledger could not be opened, read or written."""


def default_location(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/mirror/ledger.sqlite`, else `~/.local/state/mirror/ledger.sqlite`."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "mirror" / "ledger.sqlite"


class Transaction(Protocol):
    def execute(self, sql: str, params: Params | None = None) -> None: ...

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None: ...

    def fetch(self, sql: str, params: Params | None = None) -> list[Row]: ...


class RunLock(Protocol):
    """One run at a time per target, across processes and hosts that share the ledger.

    Held until `release` or until the process ends (the operating system or the
    database lets go of a dead holder's lock: nothing to expire, nothing to clean up).
    """

    def acquire(self) -> bool:
        """Take the lock if it is free; False if another run holds it (never waits)."""
        ...

    def release(self) -> None: ...


class Backend(Protocol):
    name: str
    errors: tuple[type[BaseException], ...]

    def run_lock(self, target: str) -> RunLock: ...

    def ready(self) -> bool: ...

    def transaction(self) -> AbstractContextManager[Transaction]: ...

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


class SqliteFile:
    """A SQLite file through the standard library, connected on first use.

    Reading a ledger that does not exist finds nothing and creates nothing; the first
    write creates the file and its directories. A ledger this process may not write is
    opened read-only, so reading commands work and a write fails saying so.
    """

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._connection: sqlite3.Connection | None = None
        self._in_use = threading.RLock()  # one connection, used by one thread at a time

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            writable = _may_write(self.path)
            self._connection = _open_sqlite(self.path) if writable else _read_only(self.path)
        return self._connection

    def ready(self) -> bool:
        if self._connection is None and not self.path.exists():
            return False
        found = self._connect().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'mirror_schema'"
        )
        return found.fetchone() is not None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._in_use:
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
        with self._in_use:
            return self._connect().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._in_use:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def run_lock(self, target: str) -> RunLock:
        return FileLock(_lock_file(self.path, target))


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


# The drivers mirror is tested with, and the extra that installs each.
_EXTRAS = {"psycopg": "postgresql"}


def _missing_driver(url: Any, error: ImportError) -> str:
    """Which package the URL's driver needs, and how to install it."""
    module = error.name or str(error)
    driver = url.get_driver_name()
    extra = _EXTRAS.get(driver)
    hint = (
        f"pip install 'mirror[{extra}]'"
        if extra
        else f"install the {driver} driver, or use postgresql+psycopg:// (pip install "
        "'mirror[postgresql]')"
    )
    return f"the {driver} driver is not installed (no module {module!r}): {hint}"


class SqlAlchemyDatabase:
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
        except sqlalchemy.exc.ArgumentError as exc:
            raise LedgerError(f"ledger URL {url.rpartition('@')[2]!r}: {exc}") from None
        self.name = parsed.render_as_string(hide_password=True)
        try:
            self._file = _sqlite_path(parsed)
            self.engine = sqlalchemy.create_engine(parsed, **_engine_options(parsed))
        except ImportError as exc:
            raise LedgerError(f"ledger {self.name}: {_missing_driver(parsed, exc)}") from None
        except sqlalchemy.exc.ArgumentError as exc:
            raise LedgerError(f"ledger {self.name}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            _immediate_transactions(sqlalchemy, self.engine)

    def ready(self) -> bool:
        if self._file is not None and not self._file.exists():
            return False
        return bool(self._sa.inspect(self.engine).has_table("mirror_schema"))

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        if self._file is not None:
            self._file.parent.mkdir(parents=True, exist_ok=True)
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                # Writers take turns, so concurrent first runs do not race on migrations.
                connection.execute(self._sa.text("SELECT pg_advisory_xact_lock(8151)"))
            yield _SqlAlchemyTransaction(connection, self._sa.text)

    def fetch(self, sql: str, params: Params) -> list[Row]:
        with self.engine.connect() as connection:
            return _SqlAlchemyTransaction(connection, self._sa.text).fetch(sql, params)

    def close(self) -> None:
        self.engine.dispose()

    def run_lock(self, target: str) -> RunLock:
        if self.engine.dialect.name == "postgresql":
            return AdvisoryLock(self.engine, self._sa.text, _lock_key(target))
        if self._file is not None:
            return FileLock(_lock_file(self._file, target))
        return NoLock()


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
        connection.execute(_BUSY_TIMEOUT)
        _write_ahead_logging(connection)

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(engine, "connect", connect)
    sqlalchemy.event.listen(engine, "begin", begin)


def _may_write(path: Path) -> bool:
    """False for an existing ledger whose file or directory this process may not write
    (a new one is created by the first write, which fails saying why if it cannot)."""
    if not path.exists():
        return True
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_sqlite(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = _sqlite_connect(str(path))
    try:
        connection.execute(_BUSY_TIMEOUT)
        _write_ahead_logging(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _read_only(path: Path) -> sqlite3.Connection:
    """The ledger opened read-only. In WAL mode SQLite keeps an index (`-shm`) beside the
    file, which it cannot create in a directory it may not write: then the file is read
    as it stands (`immutable`), without SQLite's locks, as a snapshot."""
    uri = path.resolve().as_uri()
    connection = _sqlite_connect(f"{uri}?mode=ro", uri=True)
    try:
        connection.execute(_BUSY_TIMEOUT)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        connection.close()
        return _sqlite_connect(f"{uri}?immutable=1", uri=True)
    return connection


def _sqlite_connect(location: str, *, uri: bool = False) -> sqlite3.Connection:
    return sqlite3.connect(
        location, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False, uri=uri
    )


def _write_ahead_logging(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL mode. SQLite answers "database is locked" at once, without
    its busy handler, while another connection writes to a file not yet in WAL mode (the
    moment another process creates the ledger): wait for it, up to `BUSY_SECONDS`."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def open_backend(location: str | None) -> Backend:
    """A SQLite file path, a SQLAlchemy URL, or None for the default file."""
    if location is None:
        return SqliteFile(default_location())
    if _URL.match(location):
        return SqlAlchemyDatabase(location)
    return SqliteFile(Path(location).expanduser())


# --- run locks ------------------------------------------------------------------------


_TRY_ADVISORY_LOCK = "SELECT pg_try_advisory_lock(:key)"
_ADVISORY_UNLOCK = "SELECT pg_advisory_unlock(:key)"


def _lock_key(target: str) -> int:
    """A stable 64-bit advisory-lock key for a target (PostgreSQL keys are signed)."""
    return int.from_bytes(hashlib.sha256(target.encode()).digest()[:8], "big", signed=True)


def _lock_file(ledger: Path, target: str) -> Path:
    """`<ledger>.<hash of target>.lock`, beside the ledger file."""
    digest = hashlib.sha256(target.encode()).hexdigest()[:16]
    return ledger.with_name(f"{ledger.name}.{digest}.lock")


class FileLock:
    """An exclusive `flock` on a file beside a SQLite ledger: processes on one host."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AdvisoryLock:
    """A PostgreSQL session advisory lock, held on its own connection for the run: every
    process and host sharing the ledger sees it; the server releases it if we die."""

    def __init__(self, engine: Any, text: Callable[[str], Any], key: int) -> None:
        self._engine = engine
        self._text = text
        self._key = key
        self._connection: Any = None

    def acquire(self) -> bool:
        connection = self._engine.connect()
        taken = connection.execute(self._text(_TRY_ADVISORY_LOCK), {"key": self._key}).scalar()
        connection.commit()
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute(self._text(_ADVISORY_UNLOCK), {"key": self._key})
            self._connection.commit()
            self._connection.close()
            self._connection = None


class NoLock:
    """An in-memory database has one user: nothing to coordinate."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None

"""The ledger's tables, and the ordered migrations that build and upgrade them.

Each `Migration` moves the schema from the version before it to its own; a ledger
records its version in `mirror_schema`, and `migrate` applies, in order and in the
caller's write transaction, every migration it has not seen. A ledger written by a
newer mirror is refused rather than misread. The DDL is portable (SQLite and
PostgreSQL): text ids (uuid4 run ids), timestamps as fixed-width ISO-8601 UTC text (so
they sort as they compare), no autoincrement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mirror.ledger.storage import LedgerError

if TYPE_CHECKING:
    from mirror.ledger.storage import Transaction


@dataclass(frozen=True, slots=True)
class Migration:
    """The statements that bring the schema to `version`."""

    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, what each run saw of every tag, and what it wrote",
        (
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
        ),
    ),
    Migration(
        2,
        "how each run ended and what started it; the service's queue of triggers",
        (
            "ALTER TABLE mirror_runs ADD COLUMN outcome TEXT",
            "ALTER TABLE mirror_runs ADD COLUMN triggered_by TEXT",
            """CREATE TABLE IF NOT EXISTS mirror_triggers (
                id TEXT PRIMARY KEY,
                dedupe_key TEXT NOT NULL,
                target TEXT NOT NULL,
                kind TEXT NOT NULL,
                scope TEXT NOT NULL,
                detail TEXT NOT NULL,
                received TEXT NOT NULL,
                state TEXT NOT NULL,
                claimed_by TEXT,
                run_id TEXT,
                finished TEXT,
                UNIQUE (target, dedupe_key)
            )""",
            """CREATE INDEX IF NOT EXISTS mirror_triggers_by_state
                ON mirror_triggers (target, state, received)""",
        ),
    ),
    Migration(
        3,
        "the referrers surveyed per mirrored tag, so that a sync with nothing to do asks "
        "again only about subjects that have some",
        (
            """CREATE TABLE IF NOT EXISTS mirror_referrers (
                target TEXT NOT NULL,
                repository TEXT NOT NULL,
                root TEXT NOT NULL,
                subject TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                checked TEXT NOT NULL,
                PRIMARY KEY (target, repository, root, subject)
            )""",
        ),
    ),
    Migration(
        4,
        "registries named without their scheme (`127.0.0.1:5000`, as `http://127.0.0.1:5000` "
        "was), so that every spelling of an address finds the same records",
        (
            "UPDATE mirror_runs SET source = substr(source, 8) WHERE source LIKE 'http://%'",
            "UPDATE mirror_runs SET target = substr(target, 8) WHERE target LIKE 'http://%'",
            "UPDATE mirror_observations SET target = substr(target, 8) "
            "WHERE target LIKE 'http://%'",
            "UPDATE mirror_writes SET target = substr(target, 8) WHERE target LIKE 'http://%'",
            "DELETE FROM mirror_referrers WHERE target LIKE 'http://%'",  # a cache: asked again
            """DELETE FROM mirror_triggers WHERE target LIKE 'http://%' AND EXISTS (
                SELECT 1 FROM mirror_triggers AS other
                WHERE other.target = substr(mirror_triggers.target, 8)
                AND other.dedupe_key = mirror_triggers.dedupe_key)""",
            "UPDATE mirror_triggers SET target = substr(target, 8) WHERE target LIKE 'http://%'",
        ),
    ),
    Migration(
        5,
        "the provenance records a run built but did not attach (a failed push, a stopped "
        "run), so that the next run attaches them",
        (
            """CREATE TABLE IF NOT EXISTS mirror_provenance_owed (
                target TEXT NOT NULL,
                repository TEXT NOT NULL,
                tag TEXT NOT NULL,
                digest TEXT NOT NULL,
                document TEXT NOT NULL,
                since TEXT NOT NULL,
                PRIMARY KEY (target, repository, tag)
            )""",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

_CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS mirror_schema (version INTEGER NOT NULL)"
_SELECT_VERSION = "SELECT MAX(version) FROM mirror_schema"
_INSERT_VERSION = "INSERT INTO mirror_schema (version) VALUES (:version)"
_DELETE_OLDER_VERSIONS = "DELETE FROM mirror_schema WHERE version < :version"


def migrate(tx: Transaction) -> int:
    """Bring the schema up to `SCHEMA_VERSION`; return the version found before."""
    tx.execute(_CREATE_VERSION_TABLE)
    rows = tx.fetch(_SELECT_VERSION)
    found = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    if found > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger has schema version {found}; this mirror knows up to "
            f"{SCHEMA_VERSION}: upgrade mirror"
        )
    for migration in MIGRATIONS:
        if migration.version > found:
            for statement in migration.statements:
                tx.execute(statement)
            tx.execute(_INSERT_VERSION, {"version": migration.version})
            tx.execute(_DELETE_OLDER_VERSIONS, {"version": migration.version})
    return found

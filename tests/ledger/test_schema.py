"""The ledger's schema: ordered migrations, an existing ledger kept as it is, and SQL that
is never assembled at run time."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

from mirror.ledger import Ledger, LedgerError
from mirror.ledger.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from mirror.ledger.storage import SqliteFile

LEDGER = Path(__file__).parents[2] / "mirror" / "ledger"
SQL = ("SELECT ", "INSERT ", "CREATE ", "DELETE ", "UPDATE ", "PRAGMA ")

# What a ledger written before migrations existed holds (schema version 1).
FIRST_RELEASE = (
    "CREATE TABLE mirror_schema (version INTEGER NOT NULL)",
    "INSERT INTO mirror_schema (version) VALUES (1)",
    "CREATE TABLE mirror_runs (id TEXT PRIMARY KEY, source TEXT NOT NULL, target TEXT NOT NULL,"
    " started TEXT NOT NULL, finished TEXT NOT NULL, steps INTEGER NOT NULL,"
    " written INTEGER NOT NULL, drift INTEGER NOT NULL)",
    "CREATE TABLE mirror_observations (run_id TEXT NOT NULL REFERENCES mirror_runs (id),"
    " target TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL, seen TEXT NOT NULL,"
    " source_digest TEXT, target_digest TEXT, action TEXT NOT NULL, reason TEXT NOT NULL,"
    " kind TEXT, drift INTEGER NOT NULL)",
    "CREATE TABLE mirror_writes (run_id TEXT NOT NULL REFERENCES mirror_runs (id),"
    " target TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,"
    " mirrored TEXT NOT NULL)",
    "INSERT INTO mirror_runs VALUES ('r1', 'mcr.microsoft.com', 'oci:/m', "
    "'2026-01-05T10:00:00.000000+00:00', '2026-01-05T10:00:01.000000+00:00', 1, 1, 0)",
    "INSERT INTO mirror_writes VALUES ('r1', 'oci:/m', 'azureiotedge-agent', '1.5.3', "
    "'sha256:" + "a" * 64 + "', '2026-01-05T10:00:01.000000+00:00')",
)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(row[0]) for row in rows}


def version(path: Path) -> list[int]:
    with sqlite3.connect(path) as connection:
        return [int(row[0]) for row in connection.execute("SELECT version FROM mirror_schema")]


def test_migrations_are_numbered_in_order_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == SCHEMA_VERSION


def test_a_new_ledger_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    backend = SqliteFile(path)
    with backend.transaction() as tx:
        assert migrate(tx) == 0
    with backend.transaction() as tx:
        assert migrate(tx) == SCHEMA_VERSION  # nothing left to do
    backend.close()
    assert {"mirror_schema", "mirror_runs", "mirror_observations", "mirror_writes"} <= tables(path)
    assert version(path) == [SCHEMA_VERSION]


def test_a_ledger_from_before_migrations_is_read_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as connection:
        for statement in FIRST_RELEASE:
            connection.execute(statement)
    with Ledger.open(str(path)) as ledger:
        assert ledger.recorded("azureiotedge-agent")["1.5.3"].target == "sha256:" + "a" * 64
    backend = SqliteFile(path)
    with backend.transaction() as tx:
        assert migrate(tx) == 1  # reading wrote nothing
    backend.close()
    assert version(path) == [SCHEMA_VERSION]


def test_a_newer_schema_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE mirror_schema (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO mirror_schema VALUES (:v)", {"v": SCHEMA_VERSION + 1})
    backend = SqliteFile(path)
    with pytest.raises(LedgerError, match="upgrade mirror"), backend.transaction() as tx:
        migrate(tx)
    backend.close()
    assert tables(path) == {"mirror_schema"}


def sql_built_at_run_time(path: Path) -> list[str]:
    """f-strings, `%` or `.format` that produce SQL text in a module of the ledger."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            text = "".join(str(p.value) for p in node.values if isinstance(p, ast.Constant))
        elif isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant):
            text = str(node.left.value)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "format":
            text = str(getattr(node.func.value, "value", ""))  # type: ignore[attr-defined]
        else:
            continue
        if any(keyword in text.upper() for keyword in SQL):
            found.append(f"{path.name}:{node.lineno}")
    return found


@pytest.mark.parametrize("path", sorted(LEDGER.glob("*.py")), ids=lambda p: p.name)
def test_no_sql_is_assembled_at_run_time(path: Path) -> None:
    assert sql_built_at_run_time(path) == []


def test_the_check_would_see_an_assembled_query(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('where = " AND tag = :tag"\nsql = f"SELECT tag FROM t WHERE 1 = 1{where}"\n')
    assert sql_built_at_run_time(probe) == ["probe.py:2"]


def test_records_of_a_registry_written_with_http_are_found_by_any_spelling(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as connection:
        for statement in FIRST_RELEASE:
            connection.execute(statement.replace("'oci:/m'", "'http://127.0.0.1:5022'"))
    digest = "sha256:" + "a" * 64
    with Ledger.open(str(path)) as ledger:
        ledger.check_writable()  # the first write brings the schema up to date
        for spelling in ("127.0.0.1:5022", "http://127.0.0.1:5022/", "https://127.0.0.1:5022"):
            found = ledger.recorded("azureiotedge-agent", ["1.5.3"], target=spelling)
            assert found["1.5.3"].target == digest, spelling
    with sqlite3.connect(path) as connection:
        targets = {row[0] for row in connection.execute("SELECT target FROM mirror_writes")}
    assert targets == {"127.0.0.1:5022"}


def test_a_missing_driver_names_the_extra_and_hides_only_the_password(tmp_path: Path) -> None:
    from tests.support.commands import run_mirror

    blocked = tmp_path / "blocked"
    blocked.mkdir()  # psycopg shadowed by a module that cannot be imported, as if absent
    (blocked / "psycopg.py").write_text(
        "raise ImportError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    url = "postgresql+psycopg://mirror:s3cret-pass@db.example:5432/mirror"
    result = run_mirror(
        "history",
        "azureiotedge-agent",
        "--ledger",
        url,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{blocked}:{Path(__file__).parents[2]}"},
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        "mirror: error: ledger postgresql+psycopg://mirror:***@db.example:5432/mirror: "
        "the psycopg driver is not installed (no module 'psycopg'): "
        "pip install 'mirror[postgresql]'"
    )
    assert "s3cret-pass" not in result.stdout + result.stderr

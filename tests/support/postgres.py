"""A real PostgreSQL server on 127.0.0.1 for tests (Debian's postgresql package).

One server per test session (`postgres` fixture in `tests/conftest.py`); each test that
needs a database creates its own, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.registry import ServerGuard, free_port


def pg_tool(name: str) -> str | None:
    """The server binary `name` (initdb, pg_ctl) of the newest installed PostgreSQL."""
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


class PostgresServer:
    """`initdb` into a temporary directory, then `pg_ctl start` on a free port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mirror-pg-"))
        self.port = free_port()
        self._run_as: list[str] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> PostgresServer:
        ServerGuard.check("PostgreSQL")
        initdb, pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.root, "postgres")
            self._run_as = ["runuser", "-u", "postgres", "--"]
        data = self.root / "data"
        initialise = [initdb, "-D", str(data), "--auth=trust", "-U", "mirror"]
        subprocess.run([*self._run_as, *initialise], check=True, capture_output=True)
        options = f"-p {self.port} -k '' -h 127.0.0.1"
        log = str(self.root / "log")
        start = [pg_ctl, "-D", str(data), "-w", "-l", log, "-o", options, "start"]
        subprocess.run([*self._run_as, *start], check=True, capture_output=True)
        return self

    def stop(self) -> None:
        pg_ctl = pg_tool("pg_ctl")
        data = str(self.root / "data")
        if pg_ctl is not None:
            stop = [pg_ctl, "-D", data, "-w", "-m", "fast", "stop"]
            subprocess.run([*self._run_as, *stop], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"mirror_{os.getpid()}_{time.monotonic_ns()}"
        url = f"postgresql://mirror@{self.address}/postgres"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://mirror@{self.address}/{name}"

"""The ledger: every tag -> digest observation of every sync, kept to answer questions later.

`mirror sync` records each run here (`Ledger.record_sync`): per tag, what the source and
the target pointed at when the run looked, what it decided and why, which tags it wrote,
and drift (upstream rebuilt a specific tag that is already mirrored). From those records
the ledger answers:

- `history`: what a tag pointed to over time, upstream and in the mirror;
- `at`: what it pointed to at a given moment ("what was 1.5 on 2026-03-01?");
- `specific_for`: the specific tag a rolling tag stands for (`mirror rewrite --pin specific`);
- `drift_events`, `recorded`, `source_record`: what `mirror tags audit` compares against.

It also keeps what the next run needs: what was learned of referrers
(`referrer_memory`) and the provenance records still to attach (`provenance_owed`).

The package in parts:

- `book`: the `Ledger` itself: recording a run, asking questions;
- `storage`: a SQLite file by default (`$XDG_STATE_HOME/mirror/ledger.sqlite`), or any
  database SQLAlchemy reaches by URL (`postgresql+psycopg://...`);
- `schema`: the tables and the ordered migrations that build and upgrade them;
- `queries`: every SQL statement, as constant text with bound parameters;
- `timeline`: periods of one digest per tag and side, and what a rolling tag stood for.

A run's observations are dated by its start, its writes by its end: the record says a
tag was absent or held a digest when the run looked, and held the written digest once
the run was over.
"""

from mirror.ledger.book import DriftEvent, Ledger, Owed, place
from mirror.ledger.storage import LedgerError, default_location
from mirror.ledger.timeline import Period, PointedAt, stamp

__all__ = [
    "DriftEvent",
    "Ledger",
    "LedgerError",
    "Owed",
    "Period",
    "PointedAt",
    "default_location",
    "place",
    "stamp",
]

"""The ledger: recording sync runs and answering what a tag pointed to, when.

Every behaviour is checked on a SQLite file (standard library), through a SQLAlchemy
`sqlite:///` URL, and on a PostgreSQL server started for the tests when Debian's
postgresql and the psycopg driver are installed. The date question ("what did 1.5 point
to on a given date") is answered from real syncs between two real registries.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mirror.engine.copy import CopyResult
from mirror.engine.plan import TagStep, TagWrite
from mirror.engine.sync import sync
from mirror.governance.decide import Action, Governance
from mirror.governance.selection import select_all
from mirror.governance.versions import parse_tag
from mirror.ledger import Ledger, LedgerError, Owed, default_location, place
from mirror.ledger.schema import SCHEMA_VERSION
from mirror.manifest import Manifest
from mirror.transport.registry import RegistryClient
from tests.support.images import Seeder
from tests.support.postgres import PostgresServer
from tests.support.registry import Registry, free_port
from tests.support.reporting import Quiet

AGENT = "azureiotedge-agent"
HUB = "azureiotedge-hub"
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TARGET = "http://127.0.0.1:5001"
SOURCE = "mcr.microsoft.com"


# --- where the ledger lives -----------------------------------------------------------


@pytest.fixture(
    params=["file", "sqlite-url", pytest.param("postgresql", marks=pytest.mark.registry)]
)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the ledger lives: a file path, a SQLAlchemy sqlite URL, or PostgreSQL."""
    if request.param == "file":
        return str(tmp_path / "state" / "mirror" / "ledger.sqlite")
    if request.param == "sqlite-url":
        return f"sqlite:///{tmp_path}/url-state/ledger.sqlite"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture(params=["file", "sqlite-url"])
def sqlite_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return str(tmp_path / "ledger.sqlite")
    return f"sqlite:///{tmp_path}/ledger.sqlite"


# --- runs made of steps -----------------------------------------------------------------


def manifest(name: str) -> Manifest:
    """A real (tiny) OCI index whose digest stands for one release's content."""
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
        "annotations": {"release": name},
    }
    return Manifest.parse(json.dumps(document).encode())


A, B, C = (manifest(name).digest for name in ("1.5.1", "1.5.2", "1.5.3"))


def step(
    tag: str,
    action: str,
    source: str | None,
    target: str | None = None,
    *,
    drift: bool = False,
    repository: str = AGENT,
) -> TagStep:
    kind = parse_tag(tag).kind.value
    return TagStep(
        repository, tag, Action(action), f"{action}: because", source, target, kind, drift
    )


def writes(steps: Sequence[TagStep], *, failed: Sequence[str] = ()) -> list[TagWrite]:
    """What a sync writes for `steps`: every pending tag except the `failed` ones."""
    return [
        TagWrite(s.repository, s.tag, manifest_with(s.source_digest))
        for s in steps
        if s.pending and s.tag not in failed
    ]


_BY_DIGEST = {manifest(name).digest: manifest(name) for name in ("1.5.1", "1.5.2", "1.5.3")}


def manifest_with(digest: str | None) -> Manifest:
    assert digest is not None
    return _BY_DIGEST[digest]


def record(
    ledger: Ledger,
    steps: Sequence[TagStep],
    started: datetime,
    *,
    failed: Sequence[str] = (),
    target: str = TARGET,
) -> str:
    return ledger.record_sync(
        source=SOURCE,
        target=target,
        steps=steps,
        written=writes(steps, failed=failed),
        started=started,
        finished=started + timedelta(minutes=1),
    )


def three_runs(ledger: Ledger) -> None:
    """Jan 5: 1.5.1 and 1.5 -> 1.5.1. Feb 5: 1.5.2 appears, 1.5 moves. Mar 5: nothing new."""
    record(ledger, [step("1.5.1", "create", A), step("1.5", "create", A)], T0)
    record(
        ledger,
        [step("1.5.1", "skip", A, A), step("1.5.2", "create", B), step("1.5", "update", B, A)],
        T0 + timedelta(days=31),
    )
    record(
        ledger,
        [step("1.5.1", "skip", A, A), step("1.5.2", "skip", B, B), step("1.5", "skip", B, B)],
        T0 + timedelta(days=59),
    )


# --- opening and creating ---------------------------------------------------------------


def test_reading_a_ledger_that_does_not_exist_finds_nothing_and_creates_nothing(
    tmp_path: Path,
) -> None:
    for location in (str(tmp_path / "a" / "ledger.sqlite"), f"sqlite:///{tmp_path}/b/l.sqlite"):
        with Ledger.open(location) as ledger:
            assert ledger.history(AGENT) == []
            assert ledger.at(AGENT, "1.5", T0) is None
            assert ledger.specific_for(AGENT, "1.5") is None
            assert ledger.drift_events() == []
            assert ledger.source_record(AGENT, "1.5") is None
    assert list(tmp_path.iterdir()) == []


def test_the_first_write_creates_the_file_and_its_directories(location: str) -> None:
    with Ledger.open(location) as ledger:
        run = record(ledger, [step("1.5.1", "create", A)], T0)
    assert len(run) == 36  # a uuid4
    if not location.startswith("postgresql"):
        assert Path(location.removeprefix("sqlite:///")).is_file()


def test_the_default_location_follows_xdg_state_home(tmp_path: Path) -> None:
    assert default_location({"XDG_STATE_HOME": str(tmp_path)}) == (
        tmp_path / "mirror" / "ledger.sqlite"
    )
    assert default_location({"XDG_STATE_HOME": ""}) == (
        Path.home() / ".local" / "state" / "mirror" / "ledger.sqlite"
    )


def test_the_default_ledger_is_used_when_no_location_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with Ledger.open(None) as ledger:
        record(ledger, [step("1.5.1", "create", A)], T0)
    assert (tmp_path / "state" / "mirror" / "ledger.sqlite").is_file()


def test_a_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(str(path)) as ledger:
        record(ledger, [step("1.5.1", "create", A)], T0)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_places_are_named_one_way_whatever_the_spelling(tmp_path: Path) -> None:
    spellings = ("http://127.0.0.1:5001/", "http://127.0.0.1:5001", "127.0.0.1:5001")
    assert {place(spelling) for spelling in spellings} == {"127.0.0.1:5001"}
    assert place("https://MyAcr.azurecr.io/") == place("myacr.azurecr.io") == "myacr.azurecr.io"
    for spelling in ("myacr.azurecr.io:443", "HTTPS://myacr.azurecr.io:443/"):
        assert place(spelling) == "myacr.azurecr.io"
    assert place("myacr.azurecr.io/edge") == "myacr.azurecr.io/edge"
    assert place("oci:./store") == f"oci:{Path.cwd() / 'store'}"


# --- what the ledger answers ------------------------------------------------------------


def test_history_shows_each_digest_once_per_side_with_when_it_was_mirrored(
    location: str,
) -> None:
    with Ledger.open(location) as ledger:
        three_runs(ledger)
        periods = ledger.history(AGENT, "1.5")
    feb, mar = T0 + timedelta(days=31), T0 + timedelta(days=59)
    minute = timedelta(minutes=1)
    summary = [
        (p.side, p.digest, p.specific, p.first_seen, p.last_seen, p.mirrored) for p in periods
    ]
    assert summary == [
        ("source", A, "1.5.1", T0, T0, None),
        ("source", B, "1.5.2", feb, mar, None),
        ("target", A, "1.5.1", T0 + minute, feb, T0 + minute),
        ("target", B, "1.5.2", feb + minute, mar, feb + minute),
    ]


def test_provenance_owed_is_kept_per_target_until_settled(location: str) -> None:
    """A run leaves records owed; a later run settles some and owes one again (its
    newer document replaces the older); another target's debts are its own."""
    first = [Owed(AGENT, "1.5.1", A, '{"n":1}'), Owed(AGENT, "1.5", A, '{"n":2}')]
    steps = [step("1.5.1", "create", A), step("1.5", "create", A)]
    with Ledger.open(location) as ledger:
        assert ledger.provenance_owed(TARGET) == []
        ledger.record_sync(
            source=SOURCE,
            target=TARGET,
            steps=steps,
            written=writes(steps),
            started=T0,
            finished=T0,
            outcome="interrupted",
            owed=first,
        )
        ledger.record_sync(
            source=SOURCE,
            target="elsewhere.example",
            steps=[],
            written=[],
            started=T0,
            finished=T0,
            owed=[Owed(AGENT, "1.5.1", B, "{}")],
        )
        assert ledger.provenance_owed(TARGET) == sorted(first, key=lambda o: o.tag)
        again = Owed(AGENT, "1.5", B, '{"n":3}')
        ledger.record_sync(
            source=SOURCE,
            target=TARGET,
            steps=[],
            written=[],
            started=T0,
            finished=T0,
            owed=[again],
            settled=[(AGENT, "1.5.1")],
        )
        assert ledger.provenance_owed(TARGET) == [again]
        assert ledger.provenance_owed("elsewhere.example") == [Owed(AGENT, "1.5.1", B, "{}")]


def test_history_of_a_repository_lists_tags_in_version_order(location: str) -> None:
    with Ledger.open(location) as ledger:
        three_runs(ledger)
        tags = [(p.tag, p.side) for p in ledger.history(AGENT)]
        assert ledger.tags(AGENT) == ["1.5.1", "1.5.2", "1.5"]
    assert tags == [
        ("1.5.1", "source"),
        ("1.5.1", "target"),
        ("1.5.2", "source"),
        ("1.5.2", "target"),
        ("1.5", "source"),
        ("1.5", "source"),
        ("1.5", "target"),
        ("1.5", "target"),
    ]


def test_at_answers_what_a_tag_pointed_to_at_a_moment(location: str) -> None:
    feb = T0 + timedelta(days=31)
    with Ledger.open(location) as ledger:
        three_runs(ledger)
        before = ledger.at(AGENT, "1.5", T0 - timedelta(days=1))
        january = ledger.at(AGENT, "1.5", datetime(2026, 1, 20, tzinfo=UTC))
        during = ledger.at(AGENT, "1.5", feb + timedelta(seconds=30))
        march = ledger.at(AGENT, "1.5", datetime(2026, 3, 31, tzinfo=UTC))
    assert before is None
    assert january is not None
    assert during is not None
    assert march is not None
    assert (january.target_digest, january.specific) == (A, "1.5.1")
    assert january.mirrored == T0 + timedelta(minutes=1)
    assert january.source_digest == A
    assert january.source_seen == T0
    # Mid-run: upstream had moved, the mirror had not been written yet.
    assert (during.source_digest, during.target_digest) == (B, A)
    assert (march.target_digest, march.specific) == (B, "1.5.2")
    assert march.mirrored == feb + timedelta(minutes=1)
    assert march.target_seen == T0 + timedelta(days=59)


def test_a_naive_moment_is_taken_as_utc(location: str) -> None:
    with Ledger.open(location) as ledger:
        three_runs(ledger)
        naive = ledger.at(AGENT, "1.5", datetime(2026, 2, 5, 10, 1))
        paris = timezone(timedelta(hours=1))
        aware = ledger.at(AGENT, "1.5", datetime(2026, 2, 5, 11, 1, tzinfo=paris))
    assert naive is not None
    assert aware is not None
    assert naive.target_digest == aware.target_digest == B


def test_specific_for_names_the_mirrored_version_a_rolling_tag_stands_for(
    location: str,
) -> None:
    with Ledger.open(location) as ledger:
        three_runs(ledger)
        # Same content under other names must not be picked: another variant, a tag
        # only seen upstream (never in the target), another line.
        record(
            ledger,
            [
                step("1.5.2-linux-amd64", "create", B),
                step("1.5.9", "hold", B),
                step("1.6.0", "create", B),
            ],
            T0 + timedelta(days=60),
        )
        assert ledger.specific_for(AGENT, "1.5") == "1.5.2"
        assert ledger.specific_for(AGENT, "1.5-linux-amd64") is None
        assert ledger.specific_for(AGENT, "1.4") is None
        assert ledger.specific_for(HUB, "1.5") is None


def test_a_failed_run_records_only_the_tags_it_wrote(location: str) -> None:
    with Ledger.open(location) as ledger:
        record(
            ledger,
            [step("1.5.1", "create", A), step("1.5.2", "create", B)],
            T0,
            failed=["1.5.2"],
        )
        recorded = ledger.recorded(AGENT)
        assert [p.side for p in ledger.history(AGENT, "1.5.2")] == ["source"]
    assert recorded["1.5.1"].target == A
    assert recorded["1.5.2"].target is None
    assert recorded["1.5.2"].source == B


def test_drift_is_one_event_however_many_runs_see_it(location: str) -> None:
    with Ledger.open(location) as ledger:
        record(ledger, [step("1.5.3", "create", A)], T0)
        for day in (1, 2, 3):
            record(ledger, [step("1.5.3", "hold", C, A, drift=True)], T0 + timedelta(days=day))
        events = ledger.drift_events()
        assert ledger.drift_events(HUB) == []
        assert ledger.source_record(AGENT, "1.5.3") == C
        assert ledger.recorded(AGENT)["1.5.3"].target == A
    assert len(events) == 1
    event = events[0]
    assert (event.tag, event.target_digest, event.source_digest, event.runs) == ("1.5.3", A, C, 3)
    assert (event.first_seen, event.last_seen) == (T0 + timedelta(days=1), T0 + timedelta(days=3))


def test_records_of_one_target_are_kept_apart_from_another(location: str) -> None:
    with Ledger.open(location) as ledger:
        record(ledger, [step("1.5", "create", A)], T0, target="http://127.0.0.1:5001/")
        record(ledger, [step("1.5", "create", B)], T0, target="MyAcr.azurecr.io")
        first = ledger.at(AGENT, "1.5", T0 + timedelta(hours=1), target="http://127.0.0.1:5001")
        second = ledger.recorded(AGENT, target="https://myacr.azurecr.io")
        both = {p.digest for p in ledger.history(AGENT, "1.5") if p.side == "target"}
    assert first is not None
    assert first.target_digest == A
    assert second["1.5"].target == B
    assert both == {A, B}


def test_steps_skipped_by_the_policy_are_recorded_but_hold_no_digest(location: str) -> None:
    with Ledger.open(location) as ledger:
        record(ledger, [step("latest", "skip", None), step("1.5.1", "create", A)], T0)
        assert ledger.tags(AGENT) == ["1.5.1"]
        assert ledger.at(AGENT, "latest", T0 + timedelta(days=1)) is None


# --- failures ---------------------------------------------------------------------------


def test_a_ledger_written_by_a_newer_mirror_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(str(path)) as ledger:
        record(ledger, [step("1.5.1", "create", A)], T0)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE mirror_schema SET version = :v", {"v": SCHEMA_VERSION + 1})
    with Ledger.open(str(path)) as ledger, pytest.raises(LedgerError, match="upgrade mirror"):
        record(ledger, [step("1.5.2", "create", B)], T0)


def test_a_location_that_cannot_be_written_is_one_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for location in (str(blocker / "ledger.sqlite"), f"sqlite:///{blocker}/ledger.sqlite"):
        with Ledger.open(location) as ledger, pytest.raises(LedgerError) as caught:
            record(ledger, [step("1.5.1", "create", A)], T0)
        assert "\n" not in str(caught.value)
        assert "recording the run failed" in str(caught.value)


def test_a_file_that_is_not_a_ledger_is_one_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with Ledger.open(str(path)) as ledger, pytest.raises(LedgerError, match="reading failed"):
        ledger.history(AGENT)


def test_an_unknown_database_driver_is_one_ledger_error() -> None:
    with pytest.raises(LedgerError, match="nosuchdb") as caught:
        Ledger.open("nosuchdb://user:secret@host/db")
    assert "secret" not in str(caught.value)


def test_a_server_that_cannot_be_reached_does_not_show_the_password() -> None:
    pytest.importorskip("psycopg")
    port = free_port()
    url = f"postgresql+psycopg://mirror:hunter2@127.0.0.1:{port}/x"
    with Ledger.open(url) as ledger, pytest.raises(LedgerError) as caught:
        record(ledger, [step("1.5.1", "create", A)], T0)
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


# --- concurrency and cost ---------------------------------------------------------------


def _many_steps(count: int, salt: int) -> list[TagStep]:
    return [
        step(f"1.5.{index}", "create" if index % 2 else "skip", A, A if index % 2 == 0 else None)
        for index in range(salt, salt + count)
    ]


def _writer(location: str, worker: int, runs: int) -> int:
    with Ledger.open(location) as ledger:
        for run in range(runs):
            steps = _many_steps(182, worker * 1000)
            started = T0 + timedelta(hours=worker, minutes=run)
            ledger.record_sync(
                source=SOURCE,
                target=TARGET,
                steps=steps,
                written=writes(steps),
                started=started,
                finished=started,
            )
    return runs


def test_concurrent_runs_all_get_recorded(location: str) -> None:
    """Eight processes record five runs of 182 tags each into one new ledger at once."""
    context = multiprocessing.get_context("fork")
    with context.Pool(8) as pool:
        done = pool.starmap(_writer, [(location, worker, 5) for worker in range(8)])
    assert sum(done) == 40
    with Ledger.open(location) as ledger:
        tags = ledger.tags(AGENT)
        sample = ledger.history(AGENT, "1.5.7000")
    assert len(tags) == 8 * 182
    assert [(p.side, p.first_seen) for p in sample] == [
        ("source", T0 + timedelta(hours=7)),
        ("target", T0 + timedelta(hours=7)),
    ]
    assert sample[0].last_seen == T0 + timedelta(hours=7, minutes=4)


def test_recording_a_run_of_182_tags_takes_milliseconds(sqlite_location: str) -> None:
    steps = _many_steps(182, 0)
    with Ledger.open(sqlite_location) as ledger:
        record(ledger, steps[:1], T0)  # creates the schema
        began = time.perf_counter()
        ledger.record_sync(
            source=SOURCE,
            target=TARGET,
            steps=steps,
            written=writes(steps),
            started=T0,
            finished=T0,
        )
        elapsed = time.perf_counter() - began
    assert elapsed < 0.5, f"{elapsed:.3f}s"


# --- real syncs: what did 1.5 point to on a given date ----------------------------------


def synced(
    ledger: Ledger,
    source: RegistryClient,
    target: RegistryClient,
    registries: tuple[Registry, Registry],
    started: datetime,
) -> CopyResult:
    outcome = sync(
        source, target, [AGENT], Quiet(strict=True), select=select_all, governance=Governance()
    )
    ledger.record_sync(
        source=registries[0].url,
        target=registries[1].url,
        steps=outcome.steps,
        written=outcome.result.tags,
        started=started,
        finished=started + timedelta(minutes=2),
    )
    return outcome.result


@pytest.mark.registry
def test_what_1_5_pointed_to_on_a_date_across_real_syncs(
    sqlite_location: str,
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    source_client: RegistryClient,
    target_client: RegistryClient,
) -> None:
    """Upstream moves 1.5 forward twice; each month a sync mirrors it and is recorded."""
    registries = (upstream, target)
    released: dict[str, str] = {}
    months = [datetime(2026, month, 5, 10, 0, tzinfo=UTC) for month in (1, 2, 3)]
    with Ledger.open(sqlite_location) as ledger:
        for month, version in zip(months, ("1.5.1", "1.5.2", "1.5.3"), strict=True):
            released[version] = seeder.push_release(AGENT, version).digest
            seeder.tag(AGENT, version, "1.5")
            assert synced(ledger, source_client, target_client, registries, month).ok
        answers = {
            day: ledger.at(AGENT, "1.5", datetime.fromisoformat(day))
            for day in ("2026-01-01", "2026-01-20", "2026-02-05T10:01", "2026-02-28", "2026-06-01")
        }
        pinned = ledger.specific_for(AGENT, "1.5", target=target.url)
        periods = [p for p in ledger.history(AGENT, "1.5") if p.side == "target"]

    assert answers["2026-01-01"] is None
    meant = {day: (a.target_digest, a.specific) for day, a in answers.items() if a is not None}
    assert meant == {
        "2026-01-20": (released["1.5.1"], "1.5.1"),
        "2026-02-05T10:01": (released["1.5.1"], "1.5.1"),  # the February run was mid-copy
        "2026-02-28": (released["1.5.2"], "1.5.2"),
        "2026-06-01": (released["1.5.3"], "1.5.3"),
    }
    february = answers["2026-02-28"]
    assert february is not None
    assert february.mirrored == months[1] + timedelta(minutes=2)
    assert pinned == "1.5.3"
    assert [(p.specific, p.mirrored) for p in periods] == [
        (version, month + timedelta(minutes=2))
        for version, month in zip(("1.5.1", "1.5.2", "1.5.3"), months, strict=True)
    ]

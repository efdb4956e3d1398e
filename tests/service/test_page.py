"""What `mirror serve` shows a person: the status page, against the JSON it comes from.

A real service (worker, schedules off, the release feed and tag watch off) mirrors two
releases and a rolling tag between two real registries, then upstream rebuilds `1.5.1`
and a second run holds it back. The app is served by a real uvicorn server on
127.0.0.1; the page is read with the standard library's HTML parser and rendered by a
real headless Chromium.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from mirror.engine.job import Job
from mirror.governance.scope import Scope
from mirror.ledger import Ledger
from mirror.service import page
from mirror.service.app import create_app
from mirror.service.service import Service
from mirror.service.triggers import requested
from mirror.settings.config import Config
from mirror.settings.service import ServiceSettings
from tests.support.images import Seeder
from tests.support.registry import Registry, free_port

REPOS = ("azureiotedge-agent", "azureiotedge-hub")
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "status-token-for-tests"
TOKEN_ENV = "MIRROR_STATUS_TOKEN"
WAIT_SECONDS = 60.0
CALLERS = {  # the headers each kind of caller sends
    "nobody": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "not bearer": {"Authorization": f"Basic {TOKEN}"},
    "no token": {"Authorization": "Bearer"},
    "token": {"Authorization": f"Bearer {TOKEN}"},
}

State = tuple[str, str, str]  # (repository, tag, state)


# --- the page, read back -----------------------------------------------------------------


@dataclass
class Table:
    """One table of the page, under the headings it follows."""

    section: str  # the <h2> before it
    caption: str  # the <h3> before it (the repository, for the tag tables)
    css: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def column(self, header: str) -> list[str]:
        index = self.headers.index(header)
        return [row[index] for row in self.rows]


class PageReader(HTMLParser):
    """The tables of the status page, with the text of every cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self.section = ""
        self.caption = ""
        self._heading: str | None = None
        self._text: list[str] | None = None
        self._table: Table | None = None
        self._row: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "h3"):
            self._heading, self._text = tag, []
        elif tag == "table":
            css = dict(attrs).get("class") or ""
            self._table = Table(self.section, self.caption, css)
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or []).strip()
        if tag == self._heading:
            if tag == "h2":
                self.section, self.caption = text, ""
            else:
                self.caption = text
            self._heading, self._text = None, None
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(text)
            self._text = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            if self._in_head:
                self._table.headers = self._row
            else:
                self._table.rows.append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table" and self._table is not None:
            self.tables.append(self._table)
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def read_page(html: str) -> list[Table]:
    reader = PageReader()
    reader.feed(html)
    reader.close()
    return reader.tables


def page_states(tables: list[Table]) -> set[State]:
    """(repository, tag, state) of every row of the page's tag tables."""
    return {
        (table.caption, tag, state)
        for table in tables
        if table.css == "tags"
        for tag, state in zip(table.column("tag"), table.column("state"), strict=True)
    }


def json_states(status: dict[str, Any]) -> set[State]:
    return {
        (repository["name"], tag["tag"], tag["state"])
        for repository in status["repositories"]
        for tag in repository["tags"]
    }


# --- a served service ---------------------------------------------------------------------


@contextmanager
def serving(service: Service) -> Iterator[str]:
    """`create_app(service)` served by uvicorn on 127.0.0.1 in a thread (its lifespan
    starts and stops the service, as `mirror serve` does); yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), "uvicorn did not stop"


def wait_for_runs(client: httpx.Client, count: int) -> dict[str, Any]:
    """The status once `count` runs are recorded, all completed, and none is running."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = client.get("/status")
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        runs = status["last_runs"]
        if len(runs) >= count and status["current"] is None and not status["waiting"]:
            assert [r["outcome"] for r in runs] == ["completed"] * len(runs), runs
            return status
        assert time.monotonic() < deadline, f"no {count} completed runs in time: {status}"
        time.sleep(0.2)


def make_service(upstream: Registry, target: Registry, ledger: Ledger, **settings: Any) -> Service:
    config = Config.model_validate({"lines": ["1.5"]})
    job = Job(
        config=config,
        source=upstream.url,
        target=target.url,
        repositories=REPOS,
        all_tags=False,
        concurrency=4,
    )
    service_settings = ServiceSettings.model_validate(
        {
            "run_at_start": True,
            "schedules": [],
            "release_feed": {"enabled": False},
            "tag_watch": {"enabled": False},
            **settings,
        }
    )
    return Service(job, ledger, service_settings, environ={TOKEN_ENV: TOKEN})


@dataclass
class Scenario:
    url: str
    headers: dict[str, str]
    status: dict[str, Any]  # after the second run
    rebuilt: str  # the digest upstream now has under 1.5.1


@contextmanager
def scenario(
    upstream: Registry, target: Registry, seeder: Seeder, tmp_path: Path, *, token: bool = False
) -> Iterator[Scenario]:
    """Two releases and the rolling tag mirrored by the service's first run; then 1.5.1
    rebuilt upstream and a second run that holds it back."""
    for repository in REPOS:
        seeder.push_release(repository, "1.5.0")
        seeder.push_release(repository, "1.5.1", oci=True, attestation=True)
        seeder.tag(repository, "1.5.1", "1.5")
    settings = {"status_token_env": TOKEN_ENV} if token else {}
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as ledger:
        service = make_service(upstream, target, ledger, **settings)
        with (
            serving(service) as url,
            httpx.Client(base_url=url, headers=headers, timeout=30) as client,
        ):
            first = wait_for_runs(client, 1)
            assert json_states(first) >= {(r, "1.5.1", "mirrored") for r in REPOS}, first
            rebuilt = seeder.push_release("azureiotedge-agent", "1.5.1", salt="rebuilt").digest
            assert service.submit(requested(Scope(), "test", datetime.now(UTC)))
            status = wait_for_runs(client, 2)
            yield Scenario(url, headers, status, rebuilt)


# --- tests -----------------------------------------------------------------------------------


def test_page_shows_the_same_tags_and_states_as_the_json(
    upstream: Registry, target: Registry, seeder: Seeder, tmp_path: Path
) -> None:
    with (
        scenario(upstream, target, seeder, tmp_path) as served,
        httpx.Client(base_url=served.url, timeout=30) as client,
    ):
        status = client.get("/status").json()
        response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    states = json_states(status)
    # The scenario happened: the first run mirrored both releases and the rolling tag
    # in both repositories; upstream then rebuilt agent 1.5.1, which the second run
    # held back (mirroring the new content under a derived tag, as the shipped policy
    # says), along with the rolling tag that still points at the old content.
    assert {(r, t, "mirrored") for r in REPOS for t in ("1.5.0", "1.5.1", "1.5")} - states == {
        ("azureiotedge-agent", "1.5.1", "mirrored"),
        ("azureiotedge-agent", "1.5", "mirrored"),
    }
    assert ("azureiotedge-agent", "1.5.1", "held") in states
    reasons = {
        (repository["name"], tag["tag"]): tag["reason"]
        for repository in status["repositories"]
        for tag in repository["tags"]
        if tag["state"] == "held"
    }
    assert "rebuilt" in reasons["azureiotedge-agent", "1.5.1"], reasons
    agent = {t["tag"]: t for t in status["repositories"][0]["tags"]}
    assert agent["1.5.1"]["upstream"] == served.rebuilt
    assert agent["1.5.1"]["digest"] != served.rebuilt  # the mirror kept its copy
    tables = read_page(response.text)
    assert {t.caption for t in tables if t.css == "tags"} == set(REPOS)
    assert page_states(tables) == states
    # Nothing shown twice either.
    rows = [row for t in tables if t.css == "tags" for row in t.rows]
    assert len(rows) == len(states)
    held_tables = [t for t in tables if t.section.startswith("Held back")]
    assert len(held_tables) == 1
    assert held_tables[0].headers == ["tag", "reason"]
    assert held_tables[0].rows == [[f"{r}:{t}", reason] for (r, t), reason in reasons.items()]


def test_chromium_renders_every_mirrored_tag_and_the_held_one(
    upstream: Registry, target: Registry, seeder: Seeder, tmp_path: Path
) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with scenario(upstream, target, seeder, tmp_path) as served:
        profile = tmp_path / "chromium-profile"
        profile.mkdir()
        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            f"{served.url}/",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
        status = served.status
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<table" in dom, dom[:2000]
    tables = read_page(dom)
    shown = {text for table in tables if table.css == "tags" for text in table.column("tag")}
    mirrored = {tag for _, tag, state in json_states(status) if state == "mirrored"}
    assert mirrored, status
    assert mirrored <= shown, f"not on the rendered page: {mirrored - shown}"
    for tag in mirrored:
        assert re.search(rf">{re.escape(tag)}<", dom), tag
    # `held` as a person reads it: a state in the tag tables, and the section that says why.
    assert ("azureiotedge-agent", "1.5.1", "held") in page_states(tables)
    assert any(t.section.startswith("Held back") and t.rows for t in tables), dom
    body = dom[dom.index("<body") :]
    assert re.search(r">\s*held\s*<", body), body


def test_status_token_guards_the_page_the_json_and_the_metrics(
    upstream: Registry, target: Registry, seeder: Seeder, tmp_path: Path
) -> None:
    with (
        scenario(upstream, target, seeder, tmp_path, token=True) as served,
        httpx.Client(base_url=served.url, timeout=30) as client,
    ):
        answers = {
            (path, auth): client.get(path, headers=headers).status_code
            for path in ("/", "/status", "/metrics", "/healthz", "/readyz", "/openapi.json")
            for auth, headers in CALLERS.items()
        }
        page_text = client.get("/", headers=served.headers).text
        metrics = client.get("/metrics", headers=served.headers)
    guarded = {(p, a): 401 for p in ("/", "/status", "/metrics") for a in CALLERS if a != "token"}
    assert answers == {
        **guarded,
        **{(path, "token"): 200 for path in ("/", "/status", "/metrics")},
        **{(p, a): 200 for p in ("/healthz", "/readyz", "/openapi.json") for a in CALLERS},
    }
    assert "azureiotedge-agent:1.5.1" in page_text
    assert metrics.headers["content-type"].startswith("text/plain")


class Markup(HTMLParser):
    """Every element and attribute name of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add(tag)
        self.attributes |= {name for name, _ in attrs}

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def markup(html: str) -> Markup:
    reader = Markup()
    reader.feed(html)
    reader.close()
    return reader


# What the page's own markup uses: anything else came from a value.
ELEMENTS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p"}
ELEMENTS |= {"table", "thead", "tbody", "tr", "th", "td", "code", "span"}
ATTRIBUTES = {"lang", "charset", "name", "content", "class", "title"}


def hand_made_status(
    value: str, *, state: str = "held", outcome: str = "completed"
) -> dict[str, Any]:
    """A status document in which every value a person reads is `value` (`state` and
    `outcome` are also class names on the page)."""
    tag = {
        "tag": value,
        "kind": value,
        "state": state,
        "digest": f"sha256:{value}",
        "upstream": f"sha256:{value}",
        "mirrored": value,
        "checked": value,
        "reason": value,
    }
    trigger = {"kind": value, "detail": value, "received": value, "state": "pending"}
    return {
        "service": {"version": value, "source": value, "target": value, "started": value},
        "current": {"started": value, "scope": value, "triggers": [trigger]},
        "last_runs": [
            {
                "id": value,
                "started": value,
                "finished": value,
                "outcome": outcome,
                "trigger": value,
                "tags": 1,
                "written": value,
                "drift": value,
            }
        ],
        "waiting": [trigger],
        "repositories": [{"name": value, "tags": [tag]}],
        "drift": [
            {"seen": value, "repository": value, "tag": value, "kind": value, "message": value}
        ],
        "verification": {
            "finished": value,
            "seconds": 1.0,
            "tags": value,
            "exit_code": 11,
            "findings": [{"kind": value, "repository": value, "tag": value, "detail": value}],
        },
    }


HOSTILE = [
    "<script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "' onmouseover='alert(1)",
    "x onmouseover=alert(1)",
    "<img src=x onerror=alert(1)>",
    "&lt;b&gt; & </td></tr></table>",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_every_value_on_the_page_is_escaped(value: str) -> None:
    html = page.render(hand_made_status(value))
    found = markup(html)
    assert found.elements <= ELEMENTS, found.elements - ELEMENTS
    assert found.attributes <= ATTRIBUTES, found.attributes - ATTRIBUTES
    # Each value reads back as itself: the tag tables, the held reason, the rest.
    tables = read_page(html)
    assert page_states(tables) == {(value, value, "held")}
    held = [t for t in tables if t.section.startswith("Held back")]
    assert held[0].rows == [[f"{value}:{value}", value]]
    text = "".join(found.text)
    assert text.count(value) >= 20, text


@pytest.mark.parametrize("value", ["held onmouseover=alert(1)", "x' onclick='alert(1)"])
def test_a_state_or_outcome_cannot_add_attributes_to_the_page(value: str) -> None:
    """`state` and `outcome` are written into `class` attributes as well as shown: escaped
    but unquoted, a space in one of them starts a new attribute (`page.py`, the tag
    tables and the last runs)."""
    for status in (
        hand_made_status("v", state=value),
        hand_made_status("v", outcome=value),
    ):
        found = markup(page.render(status))
        assert found.attributes <= ATTRIBUTES, (
            f"a value became the attributes {sorted(found.attributes - ATTRIBUTES)}: "
            "mirror/service/page.py writes class={_e(...)} unquoted; quote it: "
            'class="{_e(...)}"'
        )

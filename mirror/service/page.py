"""The status page a person reads at a glance: plain HTML rendered on the server from
the status document, no JavaScript. Every value is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1b1f24}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.8rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;
border-bottom:1px solid #d8dee4;vertical-align:top}th{font-weight:600;background:#f6f8fa}
code{font-size:.85em}.muted{color:#57606a}
.mirrored{color:#1a7f37}.held,.failed,.interrupted{color:#cf222e}.pending,.running{color:#9a6700}
"""


def render(status: dict[str, Any]) -> str:
    about = status["service"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        "<title>mirror: status</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>mirror</h1>",
        f"<p class=muted>{_e(about['source'])} &rarr; {_e(about['target'])} &middot; "
        f"mirror {_e(about['version'])} &middot; up since {_e(about['started'])}</p>",
        _current(status["current"]),
        _repositories(status["repositories"]),
        _held(status["repositories"]),
        _runs(status["last_runs"]),
        _waiting(status["waiting"]),
        _drift(status["drift"]),
        _verification(status.get("verification")),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _short(digest: str | None) -> str:
    if not digest:
        return "<span class=muted>-</span>"
    return f'<code title="{_e(digest)}">{_e(digest.partition(":")[2][:12])}</code>'


def _current(current: dict[str, Any] | None) -> str:
    if current is None:
        return "<p>No sync is running.</p>"
    why = "; ".join(t["detail"] for t in current["triggers"])
    return (
        f"<p class=running>Syncing {_e(current['scope'])} since {_e(current['started'])} "
        f"({_e(why)}).</p>"
    )


def _repositories(repositories: list[dict[str, Any]]) -> str:
    parts = ["<h2>What is mirrored</h2>"]
    for repository in repositories:
        rows = [
            (
                f"<code>{_e(tag['tag'])}</code>",
                _e(tag["kind"]),
                f'<span class="{_e(tag["state"])}">{_e(tag["state"])}</span>',
                _short(tag["digest"]),
                _e(tag["mirrored"] or ""),
            )
            for tag in repository["tags"]
        ]
        parts.append(f"<h3>{_e(repository['name'])}</h3>")
        parts.append(
            _table(("tag", "kind", "state", "digest", "mirrored"), rows, " class=tags")
            if rows
            else "<p class=muted>Nothing recorded yet.</p>"
        )
    return "\n".join(parts)


def _held(repositories: list[dict[str, Any]]) -> str:
    rows = [
        (f"<code>{_e(r['name'])}:{_e(t['tag'])}</code>", _e(t["reason"]))
        for r in repositories
        for t in r["tags"]
        if t["state"] == "held"
    ]
    if not rows:
        return ""
    return "<h2>Held back, and why</h2>" + _table(("tag", "reason"), rows)


def _runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "<h2>Last runs</h2><p class=muted>No run yet.</p>"
    rows = [
        (
            _e(r["finished"]),
            f'<span class="{_e(r["outcome"])}">{_e(r["outcome"])}</span>',
            _e(r["trigger"]),
            _e(r["written"]),
            _e(r["drift"]),
        )
        for r in runs
    ]
    return "<h2>Last runs</h2>" + _table(
        ("finished", "outcome", "trigger", "written", "drift"), rows
    )


def _waiting(waiting: list[dict[str, Any]]) -> str:
    if not waiting:
        return ""
    rows = [(_e(t["received"]), _e(t["kind"]), _e(t["detail"])) for t in waiting]
    return "<h2>Waiting</h2>" + _table(("received", "kind", "detail"), rows)


def _drift(drift: list[dict[str, Any]]) -> str:
    if not drift:
        return ""
    rows = [
        (_e(d["seen"]), f"<code>{_e(d['repository'])}:{_e(d['tag'])}</code>", _e(d["message"]))
        for d in drift
    ]
    return "<h2>Changed in the target by someone else</h2>" + _table(("seen", "tag", "what"), rows)


def _verification(verification: dict[str, Any] | None) -> str:
    if verification is None:
        return ""
    findings = verification["findings"]
    said = f"<p>{_e(verification['tags'])} tags checked at {_e(verification['finished'])}: " + (
        "<span class=mirrored>all hold</span>.</p>" if not findings else "</p>"
    )
    if not findings:
        return "<h2>Last verification</h2>" + said
    rows = [
        (
            f"<span class=failed>{_e(f['kind'])}</span>",
            f"<code>{_e(f['repository'])}:{_e(f['tag'])}</code>",
            _e(f["detail"]),
        )
        for f in findings
    ]
    return "<h2>Last verification</h2>" + said + _table(("kind", "tag", "what"), rows)

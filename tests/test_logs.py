"""Structured log lines: logfmt by default, JSON on request."""

from __future__ import annotations

import io
import json

from mirror import logs


def test_logfmt_quotes_only_what_needs_it() -> None:
    stream = io.StringIO()
    logs.configure("logfmt", stream)
    logs.get_logger().info(
        "tag.written", repository="azureiotedge-agent", reason="skip: up to date", n=3
    )
    line = stream.getvalue().strip()
    assert line.startswith("time=")
    assert (
        'level=info event=tag.written repository=azureiotedge-agent reason="skip: up to date" n=3'
        in line
    )


def test_json_lines() -> None:
    stream = io.StringIO()
    logs.configure("json", stream)
    logs.get_logger().error("failed", what="blob", error='say "no"')
    record = json.loads(stream.getvalue())
    assert (record["level"], record["event"], record["error"]) == ("error", "failed", 'say "no"')

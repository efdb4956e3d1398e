"""One redaction path: every error and log line hides what looks like a secret."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mirror import logs
from mirror.redact import redact
from tests.support.commands import run_mirror

SECRET = "S3cr3t-v4lue"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"https://user:{SECRET}@host/v2/", "https://user:***@host/v2/"),
        (f"postgresql+psycopg://mirror:{SECRET}@db/x", "postgresql+psycopg://mirror:***@db/x"),
        (f"Authorization: Bearer {SECRET}.abc", "Authorization: Bearer ***"),
        (f"basic {SECRET}", "basic ***"),
        (f'{{"password": "{SECRET}", "user": "u"}}', '{"password": "***", "user": "u"}'),
        (f"refresh_token={SECRET}&scope=x", "refresh_token=***&scope=x"),
        (f"client_secret: {SECRET}", "client_secret: ***"),
        ("password_env: MIRROR_PASSWORD", "password_env: MIRROR_PASSWORD"),
        ("https://host:5000/v2/ token service at https://host/oauth2/token", None),
    ],
)
def test_secrets_are_hidden_and_the_rest_kept(text: str, shown: str | None) -> None:
    assert redact(text) == (text if shown is None else shown)


def test_every_log_line_is_redacted() -> None:
    for fmt in ("logfmt", "json"):
        stream = io.StringIO()
        logs.configure(fmt, stream)
        logs.get_logger().info("probe", url=f"https://u:{SECRET}@h", detail=f"token={SECRET}")
        line = stream.getvalue()
        assert SECRET not in line, line
        if fmt == "json":
            assert json.loads(line)["url"] == "https://u:***@h"
    logs.configure()


def test_a_password_in_a_registry_url_is_not_echoed(tmp_path: Path) -> None:
    for option in ("--source", "--target"):
        done = run_mirror("plan", option, f"https://user:{SECRET}@bad host", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert "user:***@" in done.stderr

"""Keeping secrets out of what mirror prints and logs: one place that hides them.

Every error line (`cli.app.fail`) and every log line (`logs.LineFormatter`) passes
through `redact`, which hides:

- the password in a URL's user information (`https://user:S3cret@host` ->
  `https://user:***@host`);
- the credential of an `Authorization` value (`Bearer eyJ...`, `Basic dXNlcj...`);
- the value of a secret-looking field or parameter (`password`, `secret`, `token`,
  `access_token`, `refresh_token`, `client_secret`, ...), in JSON, `key=value` or form
  encoding.

It is a last line of defence: code does not put secrets in messages in the first place.
"""

from __future__ import annotations

import re

HIDDEN = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:]*):[^\s/@]*@")
_AUTHORIZATION = re.compile(r"(?i)\b(?P<scheme>bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_FIELD = re.compile(
    r"""(?ix)
    (?P<key>["']?[\w-]*(?:password|passwd|secret|token|credential|api[_-]?key)["']?)
    (?P<sep>\s*[:=]\s*)
    (?P<quote>["']?)
    (?P<value>[^\s"'&,;}]+)
    """
)


def redact(text: str) -> str:
    """`text` with every secret it seems to hold replaced by `***`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{HIDDEN}@", text)
    text = _AUTHORIZATION.sub(lambda m: f"{m['scheme']} {HIDDEN}", text)
    return _FIELD.sub(_hide_field, text)


def _hide_field(match: re.Match[str]) -> str:
    if match["value"] == HIDDEN or match["value"].endswith("_env"):
        return match[0]
    return f"{match['key']}{match['sep']}{match['quote']}{HIDDEN}"

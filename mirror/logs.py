"""Structured log lines: one line per event, `logfmt` (key=value) or JSON, on stderr.

    log.info("tag.written", repository="azureiotedge-agent", tag="1.5.3")
    -> time=2026-11-26T04:40:00Z level=info event=tag.written repository=... tag=1.5.3

Built on the standard library's logging; fields are passed as `extra` and rendered
by `LineFormatter`. Nothing that could hold a secret is ever given to a log call, and
every line passes through `redact` all the same.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from mirror.redact import redact

_LOGGER = "mirror"
_FIELDS = "fields"
_level = logging.INFO  # `mirror -q` / `-v`


def set_level(level: int) -> None:
    """The level every later `configure` uses (`-q`, `-v`)."""
    global _level  # noqa: PLW0603  (one setting for the process, chosen by the flags)
    _level = level
    logging.getLogger(_LOGGER).setLevel(level)


class EventLogger:
    """`logger.info("event.name", key=value, ...)`."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    @property
    def debugging(self) -> bool:
        """Whether debug events are shown: a caller on a hot path asks before building one."""
        return self._logger.isEnabledFor(logging.DEBUG)

    def debug(self, event: str, **fields: Any) -> None:
        self._logger.debug(event, extra={_FIELDS: fields})

    def info(self, event: str, **fields: Any) -> None:
        self._logger.info(event, extra={_FIELDS: fields})

    def warning(self, event: str, **fields: Any) -> None:
        self._logger.warning(event, extra={_FIELDS: fields})

    def error(self, event: str, **fields: Any) -> None:
        self._logger.error(event, extra={_FIELDS: fields})


def get_logger() -> EventLogger:
    return EventLogger(logging.getLogger(_LOGGER))


class LineFormatter(logging.Formatter):
    """`logfmt`, `json`, or `human`: for a person at a terminal, no time stamp, the
    level only when it is not info, then the event and its fields."""

    def __init__(self, fmt: str = "logfmt") -> None:
        super().__init__()
        self.json = fmt == "json"
        self.human = fmt == "human"

    def format(self, record: logging.LogRecord) -> str:
        if self.human:
            return self._human(record)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        fields: dict[str, Any] = {
            "time": stamp,
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, _FIELDS, {}),
        }
        if self.json:
            return redact(json.dumps(fields, default=str))
        return redact(" ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items()))

    def _human(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {})
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        said = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        return redact(f"{level}{record.getMessage()}" + (f": {said}" if said else ""))


def _logfmt_value(value: Any) -> str:
    text = "" if value is None else str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    return json.dumps(text)


def configure(fmt: str = "logfmt", stream: TextIO | None = None) -> None:
    """Send mirror's events to `stream` (stderr) in `fmt`, at the level `set_level`
    chose (else info); idempotent."""
    logger = logging.getLogger(_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LineFormatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(_level)
    logger.propagate = False

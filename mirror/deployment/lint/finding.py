"""What lint reports: a finding, and how serious it is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one file: which rule, how bad, where, and what to do about it."""

    rule: str
    severity: Severity
    file: str
    line: int
    path: str
    message: str
    column: int = 1

    def as_dict(self) -> dict[str, str | int]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


def has_errors(findings: list[Finding] | tuple[Finding, ...]) -> bool:
    """Whether lint should fail: any finding of severity error."""
    return any(f.severity is Severity.ERROR for f in findings)


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters shown escaped, so that a key
    or a value of a manifest cannot add lines to a report."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

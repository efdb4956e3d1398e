"""The runtime lines of edgeAgent and edgeHub, and whether a runtime tag is supported.

Tags are read with the project's one tag grammar (`mirror.governance.versions`): a
*rolling* tag names a line (`1.5`) and moves with it, a *specific* tag names one
release (`1.5.3`, `1.0.9.4`, `1.6.0-rc.1`, with an optional `-linux-arm32v7`).
`RuntimeCatalog` knows which lines are supported and how far each went, so lint can
tell an unsupported line from a version that was never released; it is data,
injected, and replaceable when the release feed moves on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mirror.governance.versions import Line, Tag, Version

AGENT_REPOSITORY = "azureiotedge-agent"
HUB_REPOSITORY = "azureiotedge-hub"


@dataclass(frozen=True, slots=True)
class RuntimeLine:
    """One `X.Y` line: whether it is supported, and its newest release known here."""

    line: str
    newest: str
    supported: bool
    end_of_support: str | None = None


class Support(StrEnum):
    """Where a runtime tag stands: on a supported line, out of support, never released,
    or on a line newer than this catalog knows."""

    SUPPORTED = "supported"
    OUT_OF_SUPPORT = "out-of-support"
    NEVER_RELEASED = "never-released"
    UNKNOWN_LINE = "unknown-line"


@dataclass(frozen=True, slots=True)
class Assessment:
    support: Support
    message: str


@dataclass(frozen=True)
class RuntimeCatalog:
    """The runtime lines and the releases that published no agent/hub image."""

    lines: tuple[RuntimeLine, ...]
    imageless: frozenset[str] = frozenset()

    def line(self, name: str) -> RuntimeLine | None:
        return next((entry for entry in self.lines if entry.line == name), None)

    def with_supported(self, supported: Iterable[str]) -> RuntimeCatalog:
        """This catalog with exactly the lines in `supported` marked supported."""
        wanted = set(supported)
        lines = tuple(
            RuntimeLine(e.line, e.newest, e.line in wanted, e.end_of_support) for e in self.lines
        )
        return RuntimeCatalog(lines, self.imageless)

    @property
    def supported_lines(self) -> list[str]:
        return [entry.line for entry in self.lines if entry.supported]

    def assess(self, tag: Tag) -> Assessment:
        """Whether a specific or rolling `tag` names a supported, an unsupported, or a
        never-released version."""
        assert tag.line is not None, "a specific or rolling tag"
        entry = self.line(str(tag.line))
        if entry is None:
            return self._assess_unknown_line(tag.line)
        release = str(tag.release)
        newest = Version.parse(entry.newest)
        beyond = tag.version is not None and _numbers(tag.version) > _numbers(newest)
        if beyond and not entry.supported:
            return Assessment(
                Support.NEVER_RELEASED,
                f"{release} was never released (the {entry.line} line ended at"
                f" {entry.newest}): use a released version",
            )
        if release in self.imageless:
            return Assessment(
                Support.NEVER_RELEASED,
                f"{release} changed only the daemon and published no edgeAgent/edgeHub"
                f" image: use another {entry.line}.x tag",
            )
        if not entry.supported:
            ended = f" (support ended {entry.end_of_support})" if entry.end_of_support else ""
            return Assessment(
                Support.OUT_OF_SUPPORT,
                f"runtime line {entry.line} is out of support{ended}: move to"
                f" {' or '.join(self.supported_lines) or 'a supported line'}",
            )
        return Assessment(Support.SUPPORTED, f"{release} is on a supported line")

    def _assess_unknown_line(self, line: Line) -> Assessment:
        known = sorted((Line.parse(entry.line) for entry in self.lines), reverse=True)
        if known and line < known[0]:
            return Assessment(
                Support.NEVER_RELEASED,
                f"there is no runtime line {line}: use a released version",
            )
        newest = str(known[0]) if known else "none"
        return Assessment(
            Support.UNKNOWN_LINE,
            f"runtime line {line} is newer than the lines known here (newest {newest}):"
            " check the tag, or update the supported runtime lines in the lint settings",
        )


def _numbers(version: Version) -> tuple[int, ...]:
    """A version's numbers padded to four; a candidate is not told apart from its
    release (`1.4.43-rc1` is not beyond a line that ended at `1.4.43`)."""
    return version.numbers + (0,) * (4 - len(version.numbers))


DEFAULT_CATALOG = RuntimeCatalog(
    lines=(
        RuntimeLine("1.0", "1.0.10.4", supported=False),
        RuntimeLine("1.1", "1.1.19", supported=False, end_of_support="2022-12"),
        RuntimeLine("1.2", "1.2.10", supported=False),
        RuntimeLine("1.3", "1.3.0", supported=False),
        RuntimeLine("1.4", "1.4.43", supported=False, end_of_support="2024-11"),
        RuntimeLine("1.5", "1.5.44", supported=True, end_of_support="2026-11"),
        RuntimeLine("1.6", "1.6.1", supported=True, end_of_support="2028-11"),
    ),
    imageless=frozenset({"1.5.8", "1.5.13"}),
)

"""edgeAgent and edgeHub version tags, and the runtime lines they belong to.

A runtime tag is a product version (`1.5`, `1.5.3`, `1.0.9.4`, `1.6.0-rc.1`) with an
optional per-platform suffix (`-linux-arm32v7`). A *rolling* tag names a line (`X.Y`)
and moves with it; a *specific* tag names one release. `RuntimeCatalog` knows which
lines are supported and how far each went, so lint can tell an unsupported line from
a version that was never released; it is data, injected, and replaceable when the
release feed moves on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

_TAG = re.compile(
    r"^(?P<version>(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)"
    r"(?:\.(?P<patch>0|[1-9][0-9]*)(?:\.(?P<build>0|[1-9][0-9]*))?)?"
    r"(?P<pre>-rc\.?[0-9]+)?)"
    r"(?P<platform>-(?:linux|windows)-(?:amd64|arm32v7|arm64v8))?$"
)
AGENT_REPOSITORY = "azureiotedge-agent"
HUB_REPOSITORY = "azureiotedge-hub"


@dataclass(frozen=True, slots=True)
class RuntimeTag:
    """A parsed runtime tag such as `1.5.3-linux-amd64`."""

    version: str
    major: int
    minor: int
    patch: int | None = None
    build: int | None = None
    prerelease: str | None = None
    platform: str | None = None

    @property
    def line(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def is_rolling(self) -> bool:
        return self.patch is None

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.major, self.minor, self.patch or 0, self.build or 0)


def parse_runtime_tag(tag: str | None) -> RuntimeTag | None:
    """The runtime version in `tag`, or None if `tag` is not a version tag."""
    match = _TAG.match(tag or "")
    if not match:
        return None
    optional = {k: int(match[k]) if match[k] else None for k in ("patch", "build")}
    return RuntimeTag(
        version=match["version"],
        major=int(match["major"]),
        minor=int(match["minor"]),
        patch=optional["patch"],
        build=optional["build"],
        prerelease=match["pre"][1:] if match["pre"] else None,
        platform=match["platform"][1:] if match["platform"] else None,
    )


def line_key(line: str) -> tuple[int, int]:
    major, _, minor = line.partition(".")
    return int(major), int(minor)


@dataclass(frozen=True, slots=True)
class RuntimeLine:
    """One `X.Y` line: whether it is supported, and its newest release known here."""

    line: str
    newest: str
    supported: bool
    end_of_support: str | None = None


class Verdict(StrEnum):
    SUPPORTED = "supported"
    OUT_OF_SUPPORT = "out-of-support"
    NEVER_RELEASED = "never-released"
    UNKNOWN_LINE = "unknown-line"


@dataclass(frozen=True, slots=True)
class Assessment:
    verdict: Verdict
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

    def assess(self, tag: RuntimeTag) -> Assessment:
        """Whether `tag` names a supported, an unsupported, or a never-released version."""
        entry = self.line(tag.line)
        if entry is None:
            return self._assess_unknown_line(tag)
        newest = parse_runtime_tag(entry.newest)
        assert newest is not None
        beyond = not tag.is_rolling and tag.key > newest.key
        if beyond and not entry.supported:
            return Assessment(
                Verdict.NEVER_RELEASED,
                f"{tag.version} was never released (the {entry.line} line ended at"
                f" {entry.newest}): use a released version",
            )
        if tag.version in self.imageless:
            return Assessment(
                Verdict.NEVER_RELEASED,
                f"{tag.version} changed only the daemon and published no edgeAgent/edgeHub"
                f" image: use another {entry.line}.x tag",
            )
        if not entry.supported:
            ended = f" (support ended {entry.end_of_support})" if entry.end_of_support else ""
            return Assessment(
                Verdict.OUT_OF_SUPPORT,
                f"runtime line {entry.line} is out of support{ended}: move to"
                f" {' or '.join(self.supported_lines) or 'a supported line'}",
            )
        return Assessment(Verdict.SUPPORTED, f"{tag.version} is on a supported line")

    def _assess_unknown_line(self, tag: RuntimeTag) -> Assessment:
        known = sorted((line_key(e.line) for e in self.lines), reverse=True)
        if known and line_key(tag.line) < known[0]:
            return Assessment(
                Verdict.NEVER_RELEASED,
                f"there is no runtime line {tag.line}: use a released version",
            )
        newest = f"{known[0][0]}.{known[0][1]}" if known else "none"
        return Assessment(
            Verdict.UNKNOWN_LINE,
            f"runtime line {tag.line} is newer than the lines known here (newest {newest}):"
            " check the tag, or update the supported runtime lines in the lint settings",
        )


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

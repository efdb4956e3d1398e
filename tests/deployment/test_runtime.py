"""Runtime version tags (read with the one tag grammar) and the catalog of runtime lines."""

from __future__ import annotations

import pytest

from mirror.deployment.runtime import (
    DEFAULT_CATALOG,
    RuntimeCatalog,
    RuntimeLine,
    Support,
)
from mirror.governance.versions import TagKind, parse_tag


@pytest.mark.parametrize(
    ("tag", "version", "line", "rolling", "platform"),
    [
        ("1.5", "1.5", "1.5", True, None),
        ("1.5.3", "1.5.3", "1.5", False, None),
        ("1.0.9.4", "1.0.9.4", "1.0", False, None),
        ("1.6.0-rc.1", "1.6.0-rc.1", "1.6", False, None),
        ("1.2.0-rc4", "1.2.0-rc4", "1.2", False, None),
        ("1.5.3-linux-arm32v7", "1.5.3", "1.5", False, "linux-arm32v7"),
        ("1.1-windows-amd64", "1.1", "1.1", True, "windows-amd64"),
    ],
)
def test_parse_runtime_tag(
    tag: str, version: str, line: str, rolling: bool, platform: str | None
) -> None:
    parsed = parse_tag(tag)
    assert (parsed.release, str(parsed.line), parsed.kind is TagKind.ROLLING, parsed.arch) == (
        version,
        line,
        rolling,
        platform,
    )


@pytest.mark.parametrize("tag", ["", "latest", "v1.5", "1", "1.5.x", "01.5", "1.5-beta"])
def test_not_runtime_tags(tag: str) -> None:
    assert parse_tag(tag).kind is TagKind.OTHER


@pytest.mark.parametrize(
    ("tag", "support", "fragment"),
    [
        ("1.5", Support.SUPPORTED, "supported"),
        ("1.5.44", Support.SUPPORTED, "supported"),
        ("1.5.99", Support.SUPPORTED, "supported"),
        ("1.6.1", Support.SUPPORTED, "supported"),
        ("1.4", Support.OUT_OF_SUPPORT, "ended 2024-11): move to 1.5 or 1.6"),
        ("1.0.8", Support.OUT_OF_SUPPORT, "1.0 is out of support"),
        ("1.4.99", Support.NEVER_RELEASED, "the 1.4 line ended at 1.4.43"),
        ("1.5.8", Support.NEVER_RELEASED, "changed only the daemon"),
        ("0.9", Support.NEVER_RELEASED, "there is no runtime line 0.9"),
        ("1.7", Support.UNKNOWN_LINE, "newer than the lines known here (newest 1.6)"),
    ],
)
def test_assess(tag: str, support: Support, fragment: str) -> None:
    assessment = DEFAULT_CATALOG.assess(parse_tag(tag))
    assert assessment.support is support
    assert fragment in assessment.message


def test_with_supported_replaces_the_supported_lines() -> None:
    catalog = DEFAULT_CATALOG.with_supported(["1.4", "1.5"])
    assert catalog.supported_lines == ["1.4", "1.5"]
    assert catalog.assess(parse_tag("1.6.1")).support is Support.OUT_OF_SUPPORT


def test_empty_catalog_knows_no_line() -> None:
    assessment = RuntimeCatalog(()).assess(parse_tag("1.5"))
    assert assessment.support is Support.UNKNOWN_LINE
    assert "newest none" in assessment.message


def test_catalog_line_lookup() -> None:
    assert DEFAULT_CATALOG.line("1.5") == RuntimeLine("1.5", "1.5.44", True, "2026-11")
    assert DEFAULT_CATALOG.line("9.9") is None

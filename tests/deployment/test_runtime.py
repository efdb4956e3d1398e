"""Runtime version tags and the catalog of runtime lines."""

from __future__ import annotations

import pytest

from mirror.deployment.runtime import (
    DEFAULT_CATALOG,
    RuntimeCatalog,
    RuntimeLine,
    Verdict,
    parse_runtime_tag,
)


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
    parsed = parse_runtime_tag(tag)
    assert parsed is not None
    assert (parsed.version, parsed.line, parsed.is_rolling, parsed.platform) == (
        version,
        line,
        rolling,
        platform,
    )


@pytest.mark.parametrize("tag", [None, "", "latest", "v1.5", "1", "1.5.x", "01.5", "1.5-beta"])
def test_not_runtime_tags(tag: str | None) -> None:
    assert parse_runtime_tag(tag) is None


@pytest.mark.parametrize(
    ("tag", "verdict", "fragment"),
    [
        ("1.5", Verdict.SUPPORTED, "supported"),
        ("1.5.44", Verdict.SUPPORTED, "supported"),
        ("1.5.99", Verdict.SUPPORTED, "supported"),
        ("1.6.1", Verdict.SUPPORTED, "supported"),
        ("1.4", Verdict.OUT_OF_SUPPORT, "ended 2024-11): move to 1.5 or 1.6"),
        ("1.0.8", Verdict.OUT_OF_SUPPORT, "1.0 is out of support"),
        ("1.4.99", Verdict.NEVER_RELEASED, "the 1.4 line ended at 1.4.43"),
        ("1.5.8", Verdict.NEVER_RELEASED, "changed only the daemon"),
        ("0.9", Verdict.NEVER_RELEASED, "there is no runtime line 0.9"),
        ("1.7", Verdict.UNKNOWN_LINE, "newer than the lines known here (newest 1.6)"),
    ],
)
def test_assess(tag: str, verdict: Verdict, fragment: str) -> None:
    parsed = parse_runtime_tag(tag)
    assert parsed is not None
    assessment = DEFAULT_CATALOG.assess(parsed)
    assert assessment.verdict is verdict
    assert fragment in assessment.message


def test_with_supported_replaces_the_supported_lines() -> None:
    catalog = DEFAULT_CATALOG.with_supported(["1.4", "1.5"])
    assert catalog.supported_lines == ["1.4", "1.5"]
    parsed = parse_runtime_tag("1.6.1")
    assert parsed is not None
    assert catalog.assess(parsed).verdict is Verdict.OUT_OF_SUPPORT


def test_empty_catalog_knows_no_line() -> None:
    parsed = parse_runtime_tag("1.5")
    assert parsed is not None
    assessment = RuntimeCatalog(()).assess(parsed)
    assert assessment.verdict is Verdict.UNKNOWN_LINE
    assert "newest none" in assessment.message


def test_catalog_line_lookup() -> None:
    assert DEFAULT_CATALOG.line("1.5") == RuntimeLine("1.5", "1.5.44", True, "2026-11")
    assert DEFAULT_CATALOG.line("9.9") is None

"""The diagnostics image the release feed pairs with each IoT Edge release, and the
default policy mirroring it (`iotedge check` on a device pulls it from the mirror)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.governance.policy import evaluate, load_policy, selected
from mirror.governance.releases import (
    DIAGNOSTICS_IMAGE,
    Product,
    component_version,
    daemon_releases,
    embedded_feed,
    paired_diagnostics,
    parse_feed,
)
from mirror.governance.versions import Line, Version

DEFAULT = Path(__file__).parents[2] / "policies" / "iotedge-runtime.yaml"
RELEASES = daemon_releases(embedded_feed())


def test_the_shipped_feed_lists_releases_of_both_lines() -> None:
    assert [(p.version, str(component_version(p, DIAGNOSTICS_IMAGE))) for p in RELEASES] == [
        ("1.6.1", "1.6.0"),
        ("1.6.1", "1.6.0"),
        ("1.5.44", "1.5.21"),
    ]


@pytest.mark.parametrize("product", RELEASES, ids=lambda p: p.version)
def test_the_default_policy_mirrors_the_diagnostics_each_release_pairs_with(
    product: Product,
) -> None:
    version = component_version(product, DIAGNOSTICS_IMAGE)
    assert version is not None
    verdicts = evaluate(load_policy(DEFAULT), DIAGNOSTICS_IMAGE, [str(version)])
    assert [v.tag for v in selected(verdicts)] == [str(version)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [(None, "1.6.0"), ("1.6", "1.6.0"), ("1.5", "1.5.21"), ("1.4", None), ("2.0", None)],
)
def test_paired_diagnostics_of_a_line(line: str | None, expected: str | None) -> None:
    found = paired_diagnostics(embedded_feed(), Line.parse(line) if line else None)
    assert (str(found) if found else None) == expected


def aziot_edge(version: str, agent: str | None, diagnostics: str | None) -> dict[str, object]:
    components = [{"name": "aziot-edge", "version": version}]
    if agent:
        components.append({"name": "azureiotedge-agent", "type": "dockerImage", "version": agent})
    if diagnostics:
        components.append(
            {"name": "azureiotedge-diagnostics", "type": "dockerImage", "version": diagnostics}
        )
    return {
        "id": "aziot-edge",
        "name": "Azure IoT Edge",
        "version": version,
        "components": components,
    }


def test_the_newest_release_wins_and_the_agent_names_the_line() -> None:
    feed = parse_feed(
        {
            "channels": [
                {"name": "stable", "products": [aziot_edge("1.5.9", "1.5.9", "1.5.4")]},
                {
                    "name": "lts",
                    "products": [
                        aziot_edge("1.5.12", "1.5.12", "1.5.7"),
                        aziot_edge("1.5.11", None, "1.5.6"),
                        aziot_edge("1.6.0", "1.6.0", None),
                        {"id": "api-proxy", "name": "API Proxy", "version": "1.1.27"},
                    ],
                },
                {"name": "prerelease", "products": [aziot_edge("1.7.0-rc1", "1.7.0-rc1", "1.7.0")]},
            ]
        }
    )
    assert paired_diagnostics(feed, Line(1, 5)) == Version.parse("1.5.7")
    assert paired_diagnostics(feed, Line(1, 6)) is None  # that release names no diagnostics
    assert paired_diagnostics(feed) == Version.parse("1.5.4")  # stable only
    assert paired_diagnostics(feed, Line(1, 7)) is None  # prereleases are not asked
    assert len(daemon_releases(feed)) == 4

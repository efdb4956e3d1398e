"""The release feed model over the real `product-versions.json`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mirror.governance.releases import FeedError, embedded_feed, load_feed, parse_feed
from mirror.governance.versions import Line, Version

DATA = Path(__file__).parents[1] / "data" / "governance"
FEED_PATH = DATA / "product-versions.json"
RUNTIME = (
    "azureiotedge-agent",
    "azureiotedge-hub",
    "azureiotedge-simulated-temperature-sensor",
)


def raw_feed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FEED_PATH.read_text())
    return data


def test_parse_the_real_feed() -> None:
    feed = load_feed(FEED_PATH)
    assert feed.schema_version == "1.0"
    assert [channel.name for channel in feed.channels] == ["stable", "lts", "prerelease"]
    lts = feed.channels[1]
    assert [(p.id, p.version) for p in lts.products] == [
        ("aziot-edge", "1.6.1"),
        ("aziot-edge", "1.5.44"),
    ]
    agent = lts.products[1].components[2]
    assert (agent.name, agent.version, agent.is_image, agent.branch) == (
        "azureiotedge-agent",
        "1.5.44",
        True,
        "release/1.5",
    )
    assert not lts.products[1].components[0].is_image


def test_the_embedded_feed_is_the_real_feed() -> None:
    assert embedded_feed() == load_feed(FEED_PATH)


def test_images_named_by_the_feed() -> None:
    assert load_feed(FEED_PATH).images() == (
        "azureiotedge-agent",
        "azureiotedge-api-proxy",
        "azureiotedge-diagnostics",
        "azureiotedge-hub",
        "azureiotedge-metrics-collector",
        "azureiotedge-simulated-temperature-sensor",
    )


@pytest.mark.parametrize(
    ("repository", "lines", "newest"),
    [
        ("azureiotedge-agent", {"1.5", "1.6"}, {"1.5": "1.5.44", "1.6": "1.6.1"}),
        ("azureiotedge-hub", {"1.5", "1.6"}, {"1.5": "1.5.44", "1.6": "1.6.1"}),
        (
            "azureiotedge-simulated-temperature-sensor",
            {"1.5", "1.6"},
            {"1.5": "1.5.44", "1.6": "1.6.1"},
        ),
        # the daemon's track, not the product's
        ("azureiotedge-diagnostics", {"1.5", "1.6"}, {"1.5": "1.5.21", "1.6": "1.6.0"}),
        ("azureiotedge-metrics-collector", {"1.3"}, {"1.3": "1.3.1"}),
        ("azureiotedge-api-proxy", {"1.1"}, {"1.1": "1.1.27"}),
        ("iotedge/azureiotedge-agent", {"1.5", "1.6"}, {"1.5": "1.5.44", "1.6": "1.6.1"}),
        ("azureiotedge-unknown", set(), {}),
        ("aziot-edge", set(), {}),
    ],
)
def test_current_lines_and_newest_versions(
    repository: str, lines: set[str], newest: dict[str, str]
) -> None:
    feed = load_feed(FEED_PATH)
    assert feed.current_lines(repository) == {Line.parse(line) for line in lines}
    assert feed.newest_per_line(repository) == {
        Line.parse(line): Version.parse(version) for line, version in newest.items()
    }


def test_diagnostics_follows_the_daemon_version() -> None:
    """Read independently from the raw JSON: each product's diagnostics = its aziot-edge."""
    feed = load_feed(FEED_PATH)
    for channel in raw_feed()["channels"]:
        for product in channel["products"]:
            versions = {c["name"]: c["version"] for c in product["components"]}
            if "azureiotedge-diagnostics" in versions:
                assert versions["azureiotedge-diagnostics"] == versions["aziot-edge"]
                assert Version.parse(versions["aziot-edge"]) in feed.image_versions(
                    "azureiotedge-diagnostics"
                )


def with_product(channel: str, version: str) -> dict[str, Any]:
    data = raw_feed()
    product = copy.deepcopy(data["channels"][0]["products"][2])
    product["version"] = version
    for component in product["components"]:
        component["version"] = version
    for item in data["channels"]:
        if item["name"] == channel:
            item["products"].append(product)
    return data


def test_prerelease_channel_and_candidates_make_no_line_current() -> None:
    feed = parse_feed(with_product("prerelease", "1.7.0-rc.1"))
    assert feed.current_lines("azureiotedge-agent") == {Line(1, 5), Line(1, 6)}
    assert feed.current_lines("azureiotedge-agent", channels=("prerelease",)) == set()
    feed = parse_feed(with_product("stable", "1.7.0-rc.1"))
    assert Line(1, 7) not in feed.current_lines("azureiotedge-agent")


def test_a_new_line_in_the_feed_becomes_current() -> None:
    feed = parse_feed(with_product("stable", "1.7.0"))
    assert feed.current_lines("azureiotedge-hub") == {Line(1, 5), Line(1, 6), Line(1, 7)}
    assert feed.newest_per_line("azureiotedge-hub")[Line(1, 7)] == Version.parse("1.7.0")


def broken(path: list[str | int], value: object) -> dict[str, Any]:
    data = raw_feed()
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "release feed: top level: expected an object"),
        ({}, "release feed: channels: expected a list"),
        (broken(["channels", 1], "lts"), "release feed: channels[1]: expected an object"),
        (
            broken(["channels", 0, "name"], None),
            "release feed: channels[0].name: expected a non-empty string",
        ),
        (
            broken(["channels", 1, "products", 0, "components"], {}),
            "release feed: channels[1].products[0].components: expected a list",
        ),
        (
            broken(["channels", 1, "products", 0, "components", 2, "version"], 1.6),
            "release feed: channels[1].products[0].components[2].version: "
            "expected a non-empty string",
        ),
    ],
)
def test_malformed_feeds(data: object, problem: str) -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(data)
    assert str(caught.value) == problem


def test_an_image_version_outside_the_grammar_is_reported_when_used() -> None:
    data = broken(["channels", 1, "products", 0, "components", 2, "version"], "1.6")
    feed = parse_feed(data)
    with pytest.raises(FeedError, match=r"azureiotedge-agent has version '1.6'"):
        feed.current_lines("azureiotedge-agent")


def test_unreadable_feed_file(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_text("{not json")
    with pytest.raises(FeedError, match=r"feed.json: cannot read the release feed"):
        load_feed(path)

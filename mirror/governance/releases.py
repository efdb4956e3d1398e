"""The IoT Edge release feed (`product-versions.json`): which runtime lines are current.

The feed (`https://aka.ms/azure-iotedge-latest-versions`, the one `iotedge check` reads)
lists channels (`stable`, `lts`, `prerelease`), each with products (`aziot-edge`,
`api-proxy`, ...), each with components: the daemon packages and the Docker images with
the version each one has. An image's version is read from its own component, not from
the product: `azureiotedge-diagnostics` follows the daemon's version track.

A copy of the feed ships in the package (`mirror/data/product-versions.json`) as the
offline default; a feed fetched elsewhere is passed in as parsed JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from mirror.errors import MirrorError
from mirror.governance.versions import Line, Version

RELEASE_CHANNELS = ("stable", "lts")
DOCKER_IMAGE = "dockerImage"


class FeedError(MirrorError):
    """The release feed is not in the shape of `product-versions.json`."""


@dataclass(frozen=True, slots=True)
class Component:
    """A daemon package or Docker image of a product, at one version."""

    name: str
    version: str
    type: str | None = None
    branch: str | None = None

    @property
    def is_image(self) -> bool:
        return self.type == DOCKER_IMAGE


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    version: str
    components: tuple[Component, ...]


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    products: tuple[Product, ...]


@dataclass(frozen=True, slots=True)
class ReleaseFeed:
    """The parsed feed, with the questions a mirror asks of it."""

    schema_version: str
    channels: tuple[Channel, ...]

    def images(self, channels: Iterable[str] = RELEASE_CHANNELS) -> tuple[str, ...]:
        """The image repositories the feed names in `channels`, sorted."""
        return tuple(sorted({component.name for component in self._images(channels)}))

    def image_versions(
        self, repository: str, channels: Iterable[str] = RELEASE_CHANNELS
    ) -> tuple[Version, ...]:
        """Every release version of `repository` listed in `channels`, ascending.

        `repository` may carry a path (`iotedge/azureiotedge-agent`); the feed names
        images by their last component. Release candidates are left out.
        """
        name = repository.rsplit("/", 1)[-1]
        versions = {
            _parse_version(component)
            for component in self._images(channels)
            if component.name == name
        }
        return tuple(sorted(version for version in versions if version.prerelease is None))

    def current_lines(
        self, repository: str, channels: Iterable[str] = RELEASE_CHANNELS
    ) -> frozenset[Line]:
        """The lines (X.Y) of `repository` the feed lists as current; empty if not listed."""
        return frozenset(version.line for version in self.image_versions(repository, channels))

    def newest_per_line(
        self, repository: str, channels: Iterable[str] = RELEASE_CHANNELS
    ) -> dict[Line, Version]:
        """The newest version of `repository` in each current line."""
        newest: dict[Line, Version] = {}
        for version in self.image_versions(repository, channels):
            newest[version.line] = version
        return newest

    def _images(self, channels: Iterable[str]) -> Iterable[Component]:
        wanted = set(channels)
        for channel in self.channels:
            if channel.name not in wanted:
                continue
            for product in channel.products:
                yield from (c for c in product.components if c.is_image)


def _parse_version(component: Component) -> Version:
    try:
        return Version.parse(component.version)
    except ValueError:
        raise FeedError(
            f"release feed: {component.name} has version {component.version!r}, "
            "which is not an IoT Edge version"
        ) from None


def parse_feed(data: object) -> ReleaseFeed:
    """Build a `ReleaseFeed` from parsed `product-versions.json`; raise `FeedError`."""
    root = _mapping(data, "top level")
    channels = _list(root.get("channels"), "channels")
    return ReleaseFeed(
        schema_version=str(root.get("schemaVersion", "")),
        channels=tuple(_channel(item, f"channels[{i}]") for i, item in enumerate(channels)),
    )


def _channel(data: object, where: str) -> Channel:
    item = _mapping(data, where)
    products = _list(item.get("products", []), f"{where}.products")
    return Channel(
        name=_text(item, "name", where),
        products=tuple(
            _product(product, f"{where}.products[{i}]") for i, product in enumerate(products)
        ),
    )


def _product(data: object, where: str) -> Product:
    item = _mapping(data, where)
    components = _list(item.get("components", []), f"{where}.components")
    return Product(
        id=_text(item, "id", where),
        name=str(item.get("name", "")),
        version=_text(item, "version", where),
        components=tuple(
            _component(component, f"{where}.components[{i}]")
            for i, component in enumerate(components)
        ),
    )


def _component(data: object, where: str) -> Component:
    item = _mapping(data, where)
    kind, branch = item.get("type"), item.get("branch")
    return Component(
        name=_text(item, "name", where),
        version=_text(item, "version", where),
        type=str(kind) if kind is not None else None,
        branch=str(branch) if branch is not None else None,
    )


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise FeedError(f"release feed: {where}: expected an object")
    return data


def _list(data: object, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise FeedError(f"release feed: {where}: expected a list")
    return data


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise FeedError(f"release feed: {where}.{key}: expected a non-empty string")
    return value


def load_feed(path: Path) -> ReleaseFeed:
    """Read and parse a `product-versions.json` file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FeedError(f"{path}: cannot read the release feed: {exc}") from None
    return parse_feed(data)


@cache
def embedded_feed() -> ReleaseFeed:
    """The copy of the feed shipped in the package: the offline default."""
    text = resources.files("mirror").joinpath("data/product-versions.json").read_text("utf-8")
    return parse_feed(json.loads(text))


# -- the daemon's releases and the diagnostics image they pair with ------------------------

DAEMON_PRODUCT = "aziot-edge"
AGENT_IMAGE = "azureiotedge-agent"
DIAGNOSTICS_IMAGE = "azureiotedge-diagnostics"


def daemon_releases(
    feed: ReleaseFeed, channels: Iterable[str] = RELEASE_CHANNELS
) -> tuple[Product, ...]:
    """The `aziot-edge` products of `channels`, in feed order (a release listed in two
    channels appears twice)."""
    wanted = set(channels)
    return tuple(
        product
        for channel in feed.channels
        if channel.name in wanted
        for product in channel.products
        if product.id == DAEMON_PRODUCT
    )


def component_version(product: Product, name: str) -> Version | None:
    """The version of the component `name` of `product`, if it lists one."""
    for component in product.components:
        if component.name == name:
            return _parse_version(component)
    return None


def paired_diagnostics(feed: ReleaseFeed, line: Line | None = None) -> Version | None:
    """The `azureiotedge-diagnostics` version that `iotedge check` pulls on a device of
    the newest release: of the runtime `line` (the agent image's X.Y) in the stable and
    LTS channels, or, without a line, the newest release of the stable channel.

    `iotedge check` names the diagnostics image after the daemon's own version, which
    is not the agent's (1.5.44 pairs with a 1.5.21 daemon), so the feed is asked.
    None when the feed lists no such release.
    """
    channels = RELEASE_CHANNELS if line is not None else ("stable",)
    candidates = [
        (_product_version(product), diagnostics)
        for product in daemon_releases(feed, channels)
        if (diagnostics := component_version(product, DIAGNOSTICS_IMAGE)) is not None
        and (line is None or _runtime_line(product) == line)
    ]
    return max(candidates, key=lambda pair: pair[0])[1] if candidates else None


def _runtime_line(product: Product) -> Line:
    """The runtime line of a release: its agent image's, else the product's own."""
    agent = component_version(product, AGENT_IMAGE)
    return agent.line if agent is not None else _product_version(product).line


def _product_version(product: Product) -> Version:
    return _parse_version(Component(product.id, product.version))

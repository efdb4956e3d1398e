"""Where a registry is: TLS by default, plain http only for loopback or `insecure`."""

from __future__ import annotations

import pytest

from mirror.errors import ConfigError, InvalidReference
from mirror.transport.endpoint import Endpoint, is_loopback
from mirror.transport.store import LayoutLocation, RegistryLocation, parse_location


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("mcr.microsoft.com", "https://mcr.microsoft.com"),
        ("https://MyAcr.azurecr.io/", "https://myacr.azurecr.io"),
        ("registry.local:5000", "https://registry.local:5000"),
        ("http://127.0.0.1:5001", "http://127.0.0.1:5001"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://[::1]:5000", "http://[::1]:5000"),
        ("registry.local:443", "https://registry.local"),  # the default port, one name
        ("http://127.0.0.1:443", "http://127.0.0.1:443"),  # not http's default: kept
    ],
)
def test_addresses(text: str, url: str) -> None:
    assert Endpoint.parse(text).url == url


def test_plain_http_needs_loopback_or_insecure() -> None:
    with pytest.raises(ConfigError, match=r"refusing plain http to registry\.plant\.local"):
        Endpoint.parse("http://registry.plant.local")
    assert Endpoint.parse("http://registry.plant.local", insecure=True).scheme == "http"


@pytest.mark.parametrize("text", ["ftp://x", "https://", "https://x?y=1", "a b"])
def test_malformed_addresses(text: str) -> None:
    with pytest.raises((ConfigError, InvalidReference)):
        parse_location(text)


def test_locations_with_a_prefix_and_layouts() -> None:
    location = parse_location("myacr.azurecr.io/edge/runtime")
    assert isinstance(location, RegistryLocation)
    assert (location.endpoint.host, location.prefix) == ("myacr.azurecr.io", "edge/runtime")
    assert str(location) == "myacr.azurecr.io/edge/runtime"
    layout = parse_location("oci:/media/usb/store")
    assert isinstance(layout, LayoutLocation)
    assert str(layout.path) == "/media/usb/store"
    with pytest.raises(InvalidReference):
        parse_location("myacr.azurecr.io/Edge")
    with pytest.raises(ConfigError, match="no path"):
        Endpoint.parse("myacr.azurecr.io/edge")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3:80", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("10.0.0.1", False),
        ("registry", False),
        ("::1", True),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback

"""Image references follow distribution's grammar, normalised once."""

from __future__ import annotations

import pytest

from mirror.errors import InvalidReference
from mirror.reference import ImageReference, validate_repository, validate_tag

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", None, None),
        ("library/alpine:3", "docker.io", "library/alpine", "3", None),
        ("index.docker.io/x/y:1", "docker.io", "x/y", "1", None),
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            "mcr.microsoft.com",
            "azureiotedge-agent",
            "1.5",
            None,
        ),
        ("localhost/a:b", "localhost", "a", "b", None),
        ("127.0.0.1:5001/a/b/c:1.0.9.4", "127.0.0.1:5001", "a/b/c", "1.0.9.4", None),
        (f"myacr.azurecr.io/hub@{DIGEST}", "myacr.azurecr.io", "hub", None, DIGEST),
        (f"myacr.azurecr.io/hub:1.5@{DIGEST}", "myacr.azurecr.io", "hub", "1.5", DIGEST),
    ],
)
def test_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    "text",
    [
        "myacr.azurecr.io/x/y:1.5:extra",
        "$upstream:443/azureiotedge-agent:1.5",
        "Upper/Case:1",
        "myacr.azurecr.io/x@sha256:short",
        "",
    ],
)
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        ImageReference.parse(text)


def test_reference_is_a_frozen_value() -> None:
    ref = ImageReference.parse("mcr.microsoft.com/azureiotedge-hub:1.5")
    assert ref == ImageReference("mcr.microsoft.com", "azureiotedge-hub", "1.5")
    assert str(ref.with_digest(DIGEST)) == f"mcr.microsoft.com/azureiotedge-hub@{DIGEST}"
    assert ref.with_tag("1.5.3").reference == "1.5.3"
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


@pytest.mark.parametrize("tag", ["1.5", "1.0.9.4", "1.5.3-linux-arm32v7", "_x", "a" * 128])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a:b", "a/b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidReference):
        validate_tag(tag)


@pytest.mark.parametrize("name", ["a", "azureiotedge-agent", "a/b/c", "a__b", "a.b-c_d"])
def test_valid_repositories(name: str) -> None:
    assert validate_repository(name) == name


@pytest.mark.parametrize("name", ["", "A", "a//b", "-a", "a/", "a b"])
def test_invalid_repositories(name: str) -> None:
    with pytest.raises(InvalidReference):
        validate_repository(name)


@pytest.mark.parametrize("tag", ["1.5\n", "é1", "1.5 ", "\n1.5", "1.5\x00"])
def test_a_tag_is_ascii_and_matched_whole(tag: str) -> None:
    with pytest.raises(InvalidReference):
        validate_tag(tag)


@pytest.mark.parametrize("name", ["agent\n", "agent/hub\n", "ägent", "edge/\nagent"])
def test_a_repository_is_ascii_and_matched_whole(name: str) -> None:
    with pytest.raises(InvalidReference):
        validate_repository(name)

"""Classifying image strings: references, placeholders, $upstream, invalid ones."""

from __future__ import annotations

import pytest

from mirror.deployment.images import ImageKind, PlaceholderKind, classify, find_placeholders

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "kind", "name", "tag", "digest"),
    [
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            ImageKind.REFERENCE,
            "mcr.microsoft.com/azureiotedge-agent",
            "1.5",
            None,
        ),
        ("myimageuri", ImageKind.REFERENCE, "docker.io/library/myimageuri", None, None),
        (
            "toolboc/yolomodule:latest-arm32v7",
            ImageKind.REFERENCE,
            "docker.io/toolboc/yolomodule",
            "latest-arm32v7",
            None,
        ),
        (
            "myacr.azurecr.io/a/b@" + DIGEST,
            ImageKind.REFERENCE,
            "myacr.azurecr.io/a/b",
            None,
            DIGEST,
        ),
        ("localhost:5000/x:1", ImageKind.REFERENCE, "localhost:5000/x", "1", None),
        (
            "mcr.microsoft.com/azureiotedge-hub:${EDGE_RUNTIME_VERSION}",
            ImageKind.PLACEHOLDER,
            "mcr.microsoft.com/azureiotedge-hub",
            "${EDGE_RUNTIME_VERSION}",
            None,
        ),
        ("${MODULES.Filter}", ImageKind.PLACEHOLDER, None, None, None),
        ("${MODULEDIR<./m>.debug}", ImageKind.PLACEHOLDER, None, None, None),
        ("$REGISTRY/filter:1.0", ImageKind.PLACEHOLDER, None, "1.0", None),
        (
            "<Container_Registry>/microsoft/azureiotedge-agent:<Tag>",
            ImageKind.PLACEHOLDER,
            None,
            "<Tag>",
            None,
        ),
        ("__REGISTRY__/filter:1.0", ImageKind.PLACEHOLDER, None, "1.0", None),
        ("#{Registry}#/filter:1.0", ImageKind.PLACEHOLDER, None, "1.0", None),
        (
            "$upstream:443/azureiotedge-agent:1.5",
            ImageKind.UPSTREAM,
            "$upstream:443/azureiotedge-agent",
            "1.5",
            None,
        ),
        ("$upstream/azureiotedge-agent:1.5", ImageKind.INVALID, None, None, None),
        ("$upstream:443", ImageKind.INVALID, None, None, None),
        ("a/b:1@" + DIGEST, ImageKind.INVALID, None, None, None),
        ("Upper/Case:1", ImageKind.INVALID, None, None, None),
        ("a/b:1:2", ImageKind.INVALID, None, None, None),
        ("", ImageKind.INVALID, None, None, None),
    ],
)
def test_classify(
    text: str, kind: ImageKind, name: str | None, tag: str | None, digest: str | None
) -> None:
    image = classify(text)
    assert (image.kind, image.name, image.tag, image.digest) == (kind, name, tag, digest)
    assert (image.problem is not None) == (kind is ImageKind.INVALID)
    assert (image.reference is not None) == (kind is ImageKind.REFERENCE)


def test_tag_and_digest_together_says_how_to_pin() -> None:
    problem = classify("mcr.microsoft.com/azureiotedge-agent:1.5@" + DIGEST).problem
    assert problem is not None
    assert "name@sha256:" in problem


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("${MODULES.A.arm32v7}", [("${MODULES.A.arm32v7}", PlaceholderKind.MODULE)]),
        ("${MODULEDIR<./a>}", [("${MODULEDIR<./a>}", PlaceholderKind.MODULE_DIR)]),
        ("$A/${B}:x", [("$A", PlaceholderKind.VARIABLE), ("${B}", PlaceholderKind.VARIABLE)]),
        ("<A>-<B.C>", [("<A>", PlaceholderKind.PIPELINE), ("<B.C>", PlaceholderKind.PIPELINE)]),
        ("x__TOKEN__", []),
        ("__TOKEN__", [("__TOKEN__", PlaceholderKind.PIPELINE)]),
        ("foo__bar__baz/x:1", []),
        ("$upstream:443/x", []),
        ("$upstreamX", [("$upstreamX", PlaceholderKind.VARIABLE)]),
        ("plain:1.0", []),
    ],
)
def test_find_placeholders(text: str, found: list[tuple[str, PlaceholderKind]]) -> None:
    assert [(p.text, p.kind) for p in find_placeholders(text)] == found


@pytest.mark.parametrize(
    ("text", "debug", "platform"),
    [
        ("${MODULES.Filter.debug}", True, None),
        ("${MODULEDIR<./m>.debug}", True, None),
        ("${MODULES.Filter.arm32v7}", False, "arm32v7"),
        ("myacr.azurecr.io/filter:1.0.0-amd64.debug", True, "amd64"),
        ("mcr.microsoft.com/azureiotedge-agent:1.5.3-linux-arm64v8", False, "arm64v8"),
        ("mcr.microsoft.com/azureiotedge-agent:1.5", False, None),
    ],
)
def test_debug_and_platform(text: str, debug: bool, platform: str | None) -> None:
    image = classify(text)
    assert image.is_debug is debug
    assert image.platform == platform


@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("mcr.microsoft.com/azureiotedge-agent:1.5", "mcr.microsoft.com"),
        ("<Container_Registry>/microsoft/azureiotedge-agent:<T>", "<Container_Registry>"),
        ("${ACR}/filter:1", "${ACR}"),
        ("myacr.azurecr.io/${NAME}:1", "myacr.azurecr.io"),
        ("team/${NAME}:1", "docker.io"),
        ("${MODULES.Filter}", None),
        ("${MODULEDIR<./m/n>}", None),
        ("a/b:1@" + DIGEST, None),
    ],
)
def test_registry_text(text: str, registry: str | None) -> None:
    assert classify(text).registry_text == registry


def test_literal_tag() -> None:
    assert classify("mcr.microsoft.com/azureiotedge-agent:1.5").literal_tag == "1.5"
    assert classify("mcr.microsoft.com/azureiotedge-agent:${V}").literal_tag is None

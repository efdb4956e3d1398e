"""Fuzzing the reference, tag, repository and digest grammars.

Properties: the parsers raise nothing but `InvalidReference`; whatever they accept
is ASCII, matches the grammar whole, holds no whitespace or control character, and
round-trips (`str(ImageReference.parse(x))` parses to the same value).
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from mirror import digest
from mirror.errors import InvalidReference
from mirror.reference import ImageReference, validate_repository, validate_tag
from tests.fuzz.strategies import (
    FAST,
    check_message,
    digests,
    mutated_references,
    odd_digest_references,
    references,
    tags,
    texts,
)

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}", re.ASCII)
# What a registry host may be: DNS labels or an IPv6 literal, and an optional port.
HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\])(?::[0-9]+)?",
    re.ASCII,
)


def clean(text: str) -> bool:
    """ASCII, printable, and without whitespace."""
    return text.isascii() and text.isprintable() and not any(c.isspace() for c in text)


reference_inputs = st.one_of(references(), mutated_references(), odd_digest_references(), texts)


@FAST
@given(reference_inputs)
@example("alpine:1.5\n")  # `$` in docker-image-py's anchored grammar let a trailing newline in
@example("mcr.microsoft.com/azureiotedge-agent@sha256:" + "a" * 64 + "\n")
@example("$upstream:443/azureiotedge-agent:1.5")
@example("A\n")  # refused, but the message quotes docker-image-py's, which holds the raw text
# docker-image-py raises its own InvalidDigest (not an InvalidReference) for a digest of the
# wrong length, an unknown algorithm or upper-case hex: it escapes ImageReference.parse.
@example("alpine@sha256:" + "a" * 65)
@example("alpine@md5:" + "a" * 32)
@example("alpine@sha256:" + "A" * 64)
@example("alpine@sha384:" + "a" * 96)  # accepted, but mirror.digest refuses sha384
def test_image_reference_parse(text: str) -> None:
    try:
        parsed = ImageReference.parse(text)
    except InvalidReference as error:
        check_message(error)
        return
    assert clean(text), f"accepted {text!r}, which holds a control character or whitespace"
    assert HOST.fullmatch(parsed.registry), parsed
    assert validate_repository(parsed.repository) == parsed.repository
    if parsed.tag is not None:
        assert TAG.fullmatch(parsed.tag), parsed
    if parsed.digest is not None:
        assert DIGEST.fullmatch(parsed.digest), parsed
    again = ImageReference.parse(str(parsed))
    assert again == parsed
    assert str(again) == str(parsed)


@FAST
@given(st.one_of(tags, texts))
@example("1.5\n")
@example("é1")
def test_validate_tag(text: str) -> None:
    try:
        accepted = validate_tag(text)
    except InvalidReference:
        assert not TAG.fullmatch(text)
        return
    assert accepted == text
    assert clean(text)
    assert TAG.fullmatch(text)


@FAST
@given(st.one_of(references(), texts, st.lists(texts, max_size=4).map("/".join)))
@example("agent\n")
@example("a" * 256)
def test_validate_repository(text: str) -> None:
    try:
        accepted = validate_repository(text)
    except InvalidReference:
        return
    assert accepted == text
    assert clean(text)
    assert len(text) <= 255
    assert all(COMPONENT.fullmatch(part) for part in text.split("/"))


@FAST
@given(
    st.one_of(
        digests,
        digests.map(lambda d: d + "\n"),
        digests.map(str.upper),
        st.builds("{}:{}".format, st.sampled_from(["sha256", "sha512", "md5", ""]), texts),
        texts,
    )
)
@example("sha256:" + "a" * 64 + "\n")
@example("sha512:" + "a" * 64)
def test_digest_validate(text: str) -> None:
    try:
        accepted = digest.validate(text)
    except InvalidReference:
        assert not DIGEST.fullmatch(text)
        return
    assert accepted == text
    assert clean(text)
    assert DIGEST.fullmatch(text)
    assert digest.algorithm_of(text) in ("sha256", "sha512")

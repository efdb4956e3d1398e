"""Digests: validation, and verification while streaming."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from mirror import digest
from mirror.errors import DigestMismatch, InvalidReference

DATA = b"hello, registry" * 1000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    "text",
    ["sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64, "sha256" + "a" * 64, ""],
)
def test_malformed_digests_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        digest.validate(text)


def test_sha512_is_accepted() -> None:
    value = digest.compute(b"x", "sha512")
    assert digest.validate(value) == value
    digest.check(b"x", value)


def test_verified_passes_content_through_unchanged() -> None:
    received = list(digest.verified(chunks(DATA), DIGEST, len(DATA)))
    assert b"".join(received) == DATA


def test_verified_withholds_the_last_chunk_of_wrong_content() -> None:
    """A consumer forwarding chunks must never receive all bytes of a bad blob."""
    tampered = DATA[:-1] + b"!"
    received: list[bytes] = []

    def forward() -> None:
        for chunk in digest.verified(chunks(tampered), DIGEST, len(DATA)):
            received.append(chunk)

    with pytest.raises(DigestMismatch):
        forward()
    assert len(b"".join(received)) < len(DATA)


@pytest.mark.parametrize("data", [DATA[:-10], DATA + b"more"], ids=["short", "long"])
def test_verified_checks_the_size(data: bytes) -> None:
    with pytest.raises(DigestMismatch):
        for _ in digest.verified(chunks(data), DIGEST, len(DATA)):
            pass


def test_verified_handles_empty_blobs() -> None:
    empty = digest.compute(b"")
    assert list(digest.verified(chunks(b""), empty, 0)) == []


def test_a_digest_with_a_trailing_newline_is_not_valid() -> None:
    with pytest.raises(InvalidReference):
        digest.validate("sha256:" + "a" * 64 + "\n")

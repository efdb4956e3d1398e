"""Content digests (`sha256:<hex>`): parsing, computing, and verifying while streaming."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from mirror.errors import DigestMismatch, InvalidReference

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"(?P<algorithm>sha256|sha512):(?P<hex>[a-f0-9]+)")


def validate(digest: str) -> str:
    """Return `digest` unchanged if it is a well-formed sha256/sha512 digest."""
    match = _DIGEST.fullmatch(digest)
    if not match or len(match["hex"]) != _ALGORITHMS[match["algorithm"]]:
        raise InvalidReference(f"not a valid digest: {digest!r}")
    return digest


def is_digest(reference: str) -> bool:
    """Whether a manifest reference is a digest (`sha256:...`), not a tag (a tag has no
    colon; `sha256-<hex>` is the referrers tag of a digest)."""
    return ":" in reference


def compute(data: bytes, algorithm: str = "sha256") -> str:
    """The digest of `data`."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def check(data: bytes, expected: str, what: str = "content") -> None:
    """Raise `DigestMismatch` unless `data` hashes to `expected`."""
    actual = compute(data, algorithm_of(expected))
    if actual != expected:
        raise DigestMismatch(expected, actual, what)


def algorithm_of(digest: str) -> str:
    return validate(digest).partition(":")[0]


def hex_of(digest: str) -> str:
    return validate(digest).partition(":")[2]


class Verifier:
    """Hashes chunks as they pass and checks size and digest at the end."""

    def __init__(self, expected: str, size: int | None = None, what: str = "blob") -> None:
        self.expected = expected
        self.size = size
        self.what = what
        self.received = 0
        self._hash = hashlib.new(algorithm_of(expected))

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.received += len(chunk)
        if self.size is not None and self.received > self.size:
            raise DigestMismatch(self.expected, f"more than {self.size} bytes", self.what)

    def verify(self) -> None:
        if self.size is not None and self.received != self.size:
            raise DigestMismatch(self.expected, f"{self.received} of {self.size} bytes", self.what)
        actual = f"{algorithm_of(self.expected)}:{self._hash.hexdigest()}"
        if actual != self.expected:
            raise DigestMismatch(self.expected, actual, self.what)


def verified(
    chunks: Iterable[bytes], expected: str, size: int | None = None, what: str = "blob"
) -> Iterator[bytes]:
    """Pass `chunks` through, hashing them; the last chunk is held back until it verifies.

    A consumer that forwards the chunks (an upload, a file) therefore never sees the
    complete content of a blob whose digest or size is wrong: the iterator raises
    `DigestMismatch` instead of yielding the final piece.
    """
    verifier = Verifier(expected, size, what)
    pending: bytes | None = None
    for chunk in chunks:
        if not chunk:
            continue
        verifier.update(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    verifier.verify()
    if pending is not None:
        yield pending

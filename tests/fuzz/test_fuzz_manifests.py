"""Fuzzing the manifest parser with what a hostile or broken registry could serve.

`Manifest.parse(raw, media_type, expected_digest)` on random bytes, random JSON and
manifest-shaped JSON with random descriptors: it raises only `ManifestError`,
`DigestMismatch` or `InvalidReference`; an accepted manifest's digest is the hash of
the raw bytes, and `children()`, `blobs()` and `subject()` raise only `MirrorError`s.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import example, given
from hypothesis import strategies as st

from mirror import digest as _digest
from mirror.errors import DigestMismatch, InvalidReference, ManifestError, MirrorError
from mirror.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
)
from tests.fuzz.strategies import (
    FAST,
    JSON,
    check_message,
    digests,
    json_scalars,
    json_values,
    texts,
)

DIGEST = "sha256:" + "a" * 64
media_types = st.one_of(
    st.sampled_from([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX]),
    st.sampled_from(
        [
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "application/vnd.oci.image.config.v1+json",
            "",
        ]
    ),
    texts,
)
sizes = st.one_of(
    st.integers(-10, 2**40),
    st.integers(-(2**80), 2**80),
    st.floats(),  # inf and nan are written as Infinity and NaN, which json.loads reads
    st.text(alphabet="0123456789-+. e", max_size=8),
    st.booleans(),
    st.none(),
)
VALID_DESCRIPTOR: dict[str, JSON] = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
    "digest": DIGEST,
    "size": 1234,
}
bad_values: st.SearchStrategy[JSON] = st.one_of(json_scalars, json_values(4))
descriptor_fields: dict[str, st.SearchStrategy[JSON]] = {
    "mediaType": st.one_of(media_types, bad_values),
    "digest": st.one_of(digests, st.just("sha512:" + "b" * 128), texts, bad_values),
    "size": st.one_of(sizes, bad_values),
    "platform": st.one_of(
        st.fixed_dictionaries(
            {"os": st.one_of(st.sampled_from(["linux", "unknown", "windows"]), bad_values)},
            optional={
                "architecture": st.one_of(st.sampled_from(["amd64", "arm"]), bad_values),
                "variant": st.one_of(st.sampled_from(["v7", "v8"]), bad_values),
            },
        ),
        bad_values,
    ),
    "urls": st.one_of(st.lists(texts, max_size=2), bad_values),
    "annotations": st.one_of(st.dictionaries(texts, texts, max_size=2), bad_values),
}


@st.composite
def corrupted(
    draw: st.DrawFn,
    valid: dict[str, JSON],
    fields: dict[str, st.SearchStrategy[JSON]],
    at_least: int = 0,
) -> JSON:
    """`valid` with a few of its fields replaced, added or removed."""
    document = dict(valid)
    for _ in range(draw(st.integers(at_least, 3))):
        key = draw(st.sampled_from(sorted(fields)))
        if draw(st.integers(0, 4)) == 0:
            document.pop(key, None)
        else:
            document[key] = draw(fields[key])
    return document


@st.composite
def descriptors(draw: st.DrawFn) -> JSON:
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values(6))
    return draw(corrupted(VALID_DESCRIPTOR, descriptor_fields, at_least=1))


manifest_fields: dict[str, st.SearchStrategy[JSON]] = {
    "schemaVersion": st.one_of(st.sampled_from([1, 2]), json_scalars),
    "mediaType": st.one_of(media_types, json_scalars),
    "config": st.one_of(descriptors(), json_scalars),
    "layers": st.one_of(st.lists(descriptors(), max_size=3), json_values(4)),
    "manifests": st.one_of(st.lists(descriptors(), max_size=3), json_values(4)),
    "subject": st.one_of(descriptors(), json_scalars),
    "annotations": json_values(4),
}
manifest_documents = st.one_of(
    corrupted(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": VALID_DESCRIPTOR, "layers": []},
        manifest_fields,
    ),
    corrupted({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, manifest_fields),
    corrupted({"schemaVersion": 2}, manifest_fields),
)


@st.composite
def raw_manifests(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return json.dumps(draw(json_values())).encode()
    text = json.dumps(draw(manifest_documents), indent=draw(st.sampled_from([None, 2])))
    if kind == 2:  # a few bytes damaged
        data = bytearray(text.encode())
        for _ in range(draw(st.integers(1, 3))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == 3:
        return text.encode(draw(st.sampled_from(["utf-16", "utf-32"])))
    return text.encode()


def _image(config: dict[str, JSON] | None = None, **fields: JSON) -> bytes:
    """An image manifest whose config descriptor has `config` on top of valid fields."""
    descriptor = {"mediaType": "x", "digest": DIGEST, "size": 1, **(config or {})}
    return json.dumps({"mediaType": OCI_MANIFEST, "config": descriptor, **fields}).encode()


@st.composite
def expected_digests(draw: st.DrawFn, raw: bytes) -> str | None:
    kind = draw(st.integers(-3, 4))
    if kind <= 0:
        return None
    if kind == 1:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    if kind == 2:
        return "sha512:" + hashlib.sha512(raw).hexdigest()
    if kind == 3:
        return draw(digests)
    return draw(st.one_of(texts, st.just("md5:" + hashlib.md5(raw).hexdigest())))


def _check_descriptor(descriptor: Descriptor) -> None:
    assert _digest.validate(descriptor.digest) == descriptor.digest
    assert isinstance(descriptor.size, int)
    assert isinstance(descriptor.media_type, str)


@FAST
@given(raw_manifests(), st.one_of(st.none(), media_types), st.data())
@example(_image({"size": float("inf")}), None, None)  # size Infinity: OverflowError
@example(_image({"size": 7}).replace(b'"size": 7', b'"size": 1e400'), None, None)
@example(_image({"annotations": [1]}), None, None)  # annotations a list: AttributeError
@example(_image({"urls": 5}), None, None)  # urls a number: TypeError
@example(_image(layers=5), None, None)  # layers a number: TypeError
@example(b"[" * 5000, None, None)  # nested deeper than json's recursion limit: RecursionError
def test_manifest_parse(raw: bytes, media_type: str | None, data: st.DataObject | None) -> None:
    expected = data.draw(expected_digests(raw), label="expected_digest") if data else None
    try:
        manifest = Manifest.parse(raw, media_type, expected)
    except (ManifestError, DigestMismatch, InvalidReference) as error:
        check_message(error)
        return
    algorithm = _digest.algorithm_of(manifest.digest)
    assert manifest.digest == f"{algorithm}:{hashlib.new(algorithm, raw).hexdigest()}"
    if expected:  # an empty expectation (an empty Docker-Content-Digest) is none
        assert manifest.digest == expected
    assert manifest.raw == raw
    assert manifest.media_type in MANIFEST_TYPES
    assert manifest.is_index == (manifest.media_type in INDEX_TYPES)
    for method in (manifest.children, manifest.blobs):
        try:
            found = method()
        except MirrorError:
            continue
        for descriptor in found:
            _check_descriptor(descriptor)
        assert not (manifest.is_index and method == manifest.blobs and found)
    try:
        subject = manifest.subject()
    except MirrorError:
        return
    if subject is not None:
        _check_descriptor(subject)

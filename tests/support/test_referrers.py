"""The referrers stand-in against a real `docker-registry`: what it adds (OCI 1.1 listing,
`OCI-Subject`, filtering, pagination) and that everything else is the registry's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.images import OCI_CONFIG, OCI_IMAGE, OCI_INDEX, OCI_LAYER, Seeder, sha256
from tests.support.referrers import ReferrersStandIn
from tests.support.registry import Registry

pytestmark = pytest.mark.registry

REPO = "edge/agent"
EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE = "application/vnd.example.signature.v1+json"
SBOM = "application/spdx+json"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    upstream = Registry(tmp_path / "registry", "registry").start()
    yield upstream
    upstream.stop()


@pytest.fixture
def stand_in(registry: Registry) -> Iterator[ReferrersStandIn]:
    service = ReferrersStandIn(registry).start()
    yield service
    service.stop()


@pytest.fixture
def seeder(stand_in: ReferrersStandIn) -> Iterator[Seeder]:
    seeder = Seeder(stand_in.url)
    yield seeder
    seeder.close()


def manifest_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


def push_image(seeder: Seeder, tag: str = "1.5") -> dict[str, Any]:
    """A one-layer OCI image, tagged; its descriptor (a referrer's `subject`)."""
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer " + tag.encode()
    raw = manifest_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": seeder.push_blob(REPO, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": OCI_LAYER,
                    "digest": seeder.push_blob(REPO, layer),
                    "size": len(layer),
                }
            ],
        }
    )
    seeder.push_manifest(REPO, tag, raw, OCI_IMAGE)
    return {"mediaType": OCI_IMAGE, "digest": sha256(raw), "size": len(raw)}


def referrer(
    seeder: Seeder,
    subject: dict[str, Any],
    *,
    artifact_type: str | None = None,
    config_type: str = EMPTY,
    content: bytes = b"{}",
    annotations: dict[str, str] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """An OCI image manifest referring to `subject` (blobs pushed); its bytes and document."""
    config = seeder.push_blob(REPO, b"{}")
    layer = seeder.push_blob(REPO, content)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE,
        "config": {"mediaType": config_type, "digest": config, "size": 2},
        "layers": [
            {"mediaType": "application/octet-stream", "digest": layer, "size": len(content)}
        ],
        "subject": subject,
    }
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    if annotations is not None:
        document["annotations"] = annotations
    return manifest_bytes(document), document


def put_manifest(seeder: Seeder, raw: bytes, reference: str | None = None) -> httpx.Response:
    return seeder.client.put(
        f"/v2/{REPO}/manifests/{reference or sha256(raw)}",
        content=raw,
        headers={"Content-Type": OCI_IMAGE},
    )


def push_signature_and_sbom(
    seeder: Seeder, subject: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two referrers of `subject`: a signature (`artifactType`) and an SBOM (its type only
    in `config.mediaType`); their expected descriptors."""
    signature, _ = referrer(
        seeder, subject, artifact_type=SIGNATURE, annotations={"org.example.signer": "ci"}
    )
    sbom, _ = referrer(seeder, subject, config_type=SBOM, content=b'{"spdxVersion":"2.3"}')
    for raw in (signature, sbom):
        assert put_manifest(seeder, raw).status_code == 201
    base = {"mediaType": OCI_IMAGE}
    return (
        {
            **base,
            "digest": sha256(signature),
            "size": len(signature),
            "artifactType": SIGNATURE,
            "annotations": {"org.example.signer": "ci"},
        },
        {**base, "digest": sha256(sbom), "size": len(sbom), "artifactType": SBOM},
    )


def listing(seeder: Seeder, digest: str, query: str = "") -> httpx.Response:
    return seeder.client.get(f"/v2/{REPO}/referrers/{digest}{query}")


def test_lists_the_referrers_pushed_through_it(seeder: Seeder) -> None:
    subject = push_image(seeder)
    signature, sbom = push_signature_and_sbom(seeder, subject)

    response = listing(seeder, subject["digest"])

    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in response.headers
    assert "Link" not in response.headers
    assert response.json() == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [signature, sbom],
    }


def test_a_subject_without_referrers_lists_none(seeder: Seeder) -> None:
    subject = push_image(seeder)
    for digest in (subject["digest"], "sha256:" + "0" * 64):
        response = listing(seeder, digest)
        assert response.status_code == 200
        assert response.json()["manifests"] == []


def test_put_with_subject_answers_oci_subject(seeder: Seeder, registry: Registry) -> None:
    subject = push_image(seeder)
    raw, _ = referrer(seeder, subject, artifact_type=SIGNATURE)

    response = put_manifest(seeder, raw)

    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == subject["digest"]
    assert response.headers["Docker-Content-Digest"] == sha256(raw)
    assert response.headers["Location"].startswith(seeder.url)
    stored = httpx.get(
        f"{registry.url}/v2/{REPO}/manifests/{sha256(raw)}", headers={"Accept": OCI_IMAGE}
    )
    assert stored.content == raw


def test_put_without_subject_has_no_oci_subject(seeder: Seeder) -> None:
    config = seeder.push_blob(REPO, b"{}")
    raw = manifest_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE,
            "config": {"mediaType": EMPTY, "digest": config, "size": 2},
            "layers": [],
        }
    )
    response = put_manifest(seeder, raw, "plain")
    assert response.status_code == 201
    assert "OCI-Subject" not in response.headers


def test_filters_by_artifact_type(seeder: Seeder) -> None:
    subject = push_image(seeder)
    signature, sbom = push_signature_and_sbom(seeder, subject)

    for artifact_type, expected in ((SIGNATURE, [signature]), (SBOM, [sbom]), ("x/none", [])):
        response = listing(
            seeder, subject["digest"], f"?artifactType={quote(artifact_type, safe='')}"
        )
        assert response.status_code == 200
        assert response.headers["OCI-Filters-Applied"] == "artifactType"
        assert response.json()["manifests"] == expected


def test_pages_follow_link_until_exhausted(registry: Registry) -> None:
    stand_in = ReferrersStandIn(registry, page_size=1).start()
    seeder = Seeder(stand_in.url)
    try:
        subject = push_image(seeder)
        expected = list(push_signature_and_sbom(seeder, subject))
        extra, _ = referrer(seeder, subject, artifact_type=SIGNATURE, content=b"second")
        assert put_manifest(seeder, extra).status_code == 201

        seen = follow(seeder, f"/v2/{REPO}/referrers/{subject['digest']}")
        assert [d["digest"] for d in seen] == [d["digest"] for d in expected] + [sha256(extra)]

        signatures = follow(
            seeder,
            f"/v2/{REPO}/referrers/{subject['digest']}?artifactType={quote(SIGNATURE, safe='')}",
        )
        assert [d["digest"] for d in signatures] == [expected[0]["digest"], sha256(extra)]
    finally:
        seeder.close()
        stand_in.stop()


def test_a_page_cursor_survives_deleting_its_referrer(registry: Registry) -> None:
    stand_in = ReferrersStandIn(registry, page_size=1).start()
    seeder = Seeder(stand_in.url)
    try:
        subject = push_image(seeder)
        signature, sbom = push_signature_and_sbom(seeder, subject)
        first = listing(seeder, subject["digest"])
        assert first.json()["manifests"] == [signature]

        seeder.delete_manifest(REPO, signature["digest"])
        rest = seeder.client.get(first.headers["Link"].partition(">")[0].lstrip("<"))

        assert rest.json()["manifests"] == [sbom]
        assert "Link" not in rest.headers
    finally:
        seeder.close()
        stand_in.stop()


def follow(seeder: Seeder, url: str) -> list[dict[str, Any]]:
    """Every descriptor of a paged listing, one page per request, following `Link`."""
    seen: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = seeder.client.get(next_url)
        assert response.status_code == 200
        page = response.json()["manifests"]
        assert len(page) == 1
        seen += page
        link = response.headers.get("Link")
        next_url = link.partition(">")[0].lstrip("<") if link else None
        if link:
            assert link.endswith('; rel="next"')
    return seen


def test_delete_forgets_the_referrer(seeder: Seeder, stand_in: ReferrersStandIn) -> None:
    subject = push_image(seeder)
    signature, sbom = push_signature_and_sbom(seeder, subject)

    seeder.delete_manifest(REPO, signature["digest"])

    assert listing(seeder, subject["digest"]).json()["manifests"] == [sbom]
    assert stand_in.referrers(REPO, subject["digest"]) == [sbom]


def test_disabled_is_a_registry_without_the_api(seeder: Seeder, stand_in: ReferrersStandIn) -> None:
    subject = push_image(seeder)
    stand_in.enabled = False
    raw, _ = referrer(seeder, subject, artifact_type=SIGNATURE)

    pushed = put_manifest(seeder, raw)
    response = listing(seeder, subject["digest"])

    assert pushed.status_code == 201
    assert "OCI-Subject" not in pushed.headers
    assert response.status_code == 404
    stand_in.enabled = True
    assert [d["digest"] for d in listing(seeder, subject["digest"]).json()["manifests"]] == [
        sha256(raw)
    ]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/v2/{REPO}/referrers/sha256:abc", "DIGEST_INVALID"),
        (f"/v2/{REPO}/referrers/not-a-digest", "DIGEST_INVALID"),
        (f"/v2/{REPO}/referrers/sha256:{'A' * 64}", "DIGEST_INVALID"),
        (f"/v2/Edge/referrers/sha256:{'0' * 64}", "NAME_INVALID"),
    ],
)
def test_malformed_requests_are_400(seeder: Seeder, path: str, code: str) -> None:
    response = seeder.client.get(path)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code


def test_referrers_pushed_to_the_upstream_directly_are_unknown(
    seeder: Seeder, registry: Registry
) -> None:
    subject = push_image(seeder)
    raw, _ = referrer(seeder, subject, artifact_type=SIGNATURE)
    direct = Seeder(registry.url)
    try:
        direct.push_manifest(REPO, sha256(raw), raw, OCI_IMAGE)
    finally:
        direct.close()
    assert listing(seeder, subject["digest"]).json()["manifests"] == []


def test_counts_requests(seeder: Seeder, stand_in: ReferrersStandIn, registry: Registry) -> None:
    subject = push_image(seeder)
    stand_in.counters.reset()
    mark = len(registry.requests_since(0))

    listing(seeder, subject["digest"])
    seeder.digest_of(REPO, "1.5")

    assert stand_in.counters.count("GET", "/referrers/") == 1
    assert stand_in.counters.count("HEAD", "/manifests/1.5") == 1
    assert stand_in.counters.count() == 2
    assert [r.answered_here for r in stand_in.counters.requests] == [True, False]
    assert [r.method for r in registry.requests_since(mark)] == ["HEAD"]

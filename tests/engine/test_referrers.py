"""Signatures, SBOMs and provenance travel with the images; `mirror verify` checks them.

Real `docker-registry` processes (distribution 2.8: no referrers API, so upstream
lists referrers with the referrers tag schema, written here by hand as a signing tool
would), and `ReferrersStandIn` where a registry with the API is needed.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest

from mirror.engine.job import Job
from mirror.engine.plan import TagWrite
from mirror.engine.provenance import ARTIFACT_TYPE
from mirror.engine.run import Runner, RunReport
from mirror.ledger import Ledger
from mirror.referrers import fallback_tag
from mirror.settings.config import Config
from mirror.transport.artifacts import EMPTY_CONFIG
from tests.support.commands import run_mirror
from tests.support.faults import Fault, FaultProxy
from tests.support.images import OCI_INDEX, Pushed, Seeder, canonical, sha256
from tests.support.referrers import ReferrersStandIn
from tests.support.registry import Registry
from tests.support.reporting import Quiet

AGENT = "azureiotedge-agent"
SIGNATURE = "application/vnd.cncf.notary.signature"
SBOM = "application/spdx+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = b"{}"
SCHEMA = Path(__file__).parents[2] / "mirror" / "data" / "provenance-v1.schema.json"


@dataclass(frozen=True)
class Artifact:
    digest: str
    size: int
    raw: bytes
    artifact_type: str


def attach(
    seeder: Seeder,
    subject: str,
    subject_size: int,
    artifact_type: str,
    payload: bytes,
    *,
    subject_type: str = OCI_INDEX,
    list_by_tag: bool = True,
) -> Artifact:
    """Push an artifact whose subject is `subject` and, as a signing tool does on a
    registry without the referrers API, add it to the subject's referrers tag."""
    seeder.push_blob(AGENT, EMPTY)
    layer = seeder.push_blob(AGENT, payload)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256(EMPTY),
            "size": 2,
        },
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": len(payload)}],
        "subject": {"mediaType": subject_type, "digest": subject, "size": subject_size},
        "annotations": {"org.opencontainers.image.created": "2026-11-30T10:00:00Z"},
    }
    raw = canonical(manifest)
    digest = seeder.push_manifest(AGENT, sha256(raw), raw, OCI_MANIFEST)
    artifact = Artifact(digest, len(raw), raw, artifact_type)
    if list_by_tag:
        listed = referrers_tag(seeder, subject)
        entry = {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(raw),
            "artifactType": artifact_type,
            "annotations": manifest["annotations"],
        }
        write_referrers_tag(seeder, subject, [*listed, entry])
    return artifact


def referrers_tag(seeder: Seeder, subject: str) -> list[dict[str, object]]:
    response = seeder.client.get(
        f"/v2/{AGENT}/manifests/{fallback_tag(subject)}", headers={"Accept": OCI_INDEX}
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json()["manifests"])


def write_referrers_tag(seeder: Seeder, subject: str, entries: list[dict[str, object]]) -> None:
    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    seeder.push_manifest(AGENT, fallback_tag(subject), index, OCI_INDEX)


def raw_manifest(seeder: Seeder, digest: str) -> bytes | None:
    response = seeder.client.get(
        f"/v2/{AGENT}/manifests/{digest}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
    )
    return response.content if response.status_code == 200 else None


@dataclass
class Signed:
    """An upstream release with a signature on its index, an SBOM on one platform
    manifest, and a signature on the signature."""

    release: Pushed
    signature: Artifact
    sbom: Artifact
    countersignature: Artifact
    platform: str


@pytest.fixture
def signed(seeder: Seeder) -> Signed:
    release = seeder.push_release(AGENT, "1.5.3", oci=True)
    index = raw_manifest(seeder, release.digest)
    assert index is not None
    platform = release.children[0]
    platform_size = len(raw_manifest(seeder, platform) or b"")
    signature = attach(seeder, release.digest, len(index), SIGNATURE, b"signature of the index")
    sbom = attach(
        seeder,
        platform,
        platform_size,
        SBOM,
        b'{"spdxVersion": "SPDX-2.3"}',
        subject_type=OCI_MANIFEST,
    )
    countersignature = attach(
        seeder,
        signature.digest,
        signature.size,
        SIGNATURE,
        b"signature of the signature",
        subject_type=OCI_MANIFEST,
    )
    return Signed(release, signature, sbom, countersignature, platform)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(str(tmp_path / "ledger.sqlite")) as opened:
        yield opened


def job(source: str, target: str, policy: Path | None = None) -> Job:
    config = Config(
        source=source, target=target, repositories=(AGENT,), lines=("1.5",), policy=policy
    )
    return Job(config, source, target, (AGENT,), False, 4)


def sync(runner: Runner) -> RunReport:
    with runner.exclusive() as mine:
        assert mine
        report = runner.run(Quiet(strict=True))
    assert report.outcome is not None
    assert report.outcome.ok, report.outcome.failures
    assert report.state == "completed"
    return report


def writes(registry: Registry, mark: int) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in registry.requests_since(mark)
        if r.method in ("PUT", "POST", "PATCH", "DELETE")
    ]


def test_signatures_sboms_and_their_signatures_travel_with_the_image(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    signed: Signed,
    ledger: Ledger,
) -> None:
    runner = Runner(job(upstream.url, target.url), ledger)
    report = sync(runner)
    assert report.outcome is not None
    copied = {copy.digest for copy in report.outcome.result.referrers}
    assert copied == {signed.signature.digest, signed.sbom.digest, signed.countersignature.digest}
    # byte for byte, and each listed for its subject by the target's referrers tag
    for artifact, subject in (
        (signed.signature, signed.release.digest),
        (signed.sbom, signed.platform),
        (signed.countersignature, signed.signature.digest),
    ):
        assert raw_manifest(target_seeder, artifact.digest) == artifact.raw
        listed = {str(e["digest"]): e for e in referrers_tag(target_seeder, subject)}
        assert artifact.digest in listed
        assert listed[artifact.digest]["artifactType"] == artifact.artifact_type
    assert target_seeder.digest_of(AGENT, "1.5.3") == signed.release.digest

    # A second sync writes nothing, and asks upstream once per subject that has referrers.
    mark, upstream_mark = len(target.requests()), len(upstream.requests())
    sync(runner)
    assert writes(target, mark) == []
    asked = [r.path for r in upstream.requests_since(upstream_mark) if "sha256-" in r.path]
    assert sorted(asked) == sorted(
        f"/v2/{AGENT}/manifests/{fallback_tag(d)}"
        for d in (signed.release.digest, signed.platform, signed.signature.digest)
    )

    # The signature is withdrawn upstream: the mirror keeps it, and verify says so.
    write_referrers_tag(seeder, signed.release.digest, [])
    sync(runner)
    assert raw_manifest(target_seeder, signed.signature.digest) == signed.signature.raw
    result = verify_cli(upstream, target, ledger, "--output", "json")
    assert result.returncode == 14, result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert [(f["kind"], signed.signature.digest in f["detail"]) for f in findings] == [
        ("upstream", True)
    ]


def test_provenance_is_attached_with_oras_and_matches_its_schema(
    upstream: Registry,
    target: Registry,
    target_seeder: Seeder,
    signed: Signed,
    ledger: Ledger,
) -> None:
    report = sync(Runner(job(upstream.url, target.url), ledger))
    assert report.outcome is not None
    records = report.outcome.provenance.records
    assert len(records) == len(report.outcome.result.tags) == 1  # 1.5.3
    listed = referrers_tag(target_seeder, signed.release.digest)
    provenance = [e for e in listed if e.get("artifactType") == ARTIFACT_TYPE]
    assert {str(e["digest"]) for e in provenance} == {r.digest for r in records}
    schema = json.loads(SCHEMA.read_text())
    tags = set()
    for entry in provenance:
        manifest = json.loads(raw_manifest(target_seeder, str(entry["digest"])) or b"")
        assert manifest["subject"]["digest"] == signed.release.digest
        layer = manifest["layers"][0]["digest"]
        document = json.loads(target_seeder.client.get(f"/v2/{AGENT}/blobs/{layer}").content)
        jsonschema.validate(document, schema)
        assert document["target"]["digest"] == document["source"]["digest"] == signed.release.digest
        assert document["run"]["id"] == report.run_id
        assert document["lock"] == "not-supported"
        tags.add(document["tag"])
    assert tags == {"1.5.3"}


def test_the_records_of_one_run_send_the_empty_config_once_per_repository(
    upstream: Registry, target: Registry, seeder: Seeder, ledger: Ledger
) -> None:
    for version in ("1.5.2", "1.5.3"):  # unsigned: no referrer brings the config first
        seeder.push_release(AGENT, version, oci=True)
    seeder.tag(AGENT, "1.5.3", "1.5")
    mark = len(target.requests())
    report = sync(Runner(job(upstream.url, target.url), ledger))
    assert report.outcome is not None
    assert len(report.outcome.provenance.records) == 3  # 1.5, 1.5.2, 1.5.3, pushed at once
    # Without the pusher's lock per repository, the 3 records pushed at once each
    # uploaded it (3 of 3 tries); with it, one sends it and the others skip it.
    empty = quote(EMPTY_CONFIG.digest)
    uploads = [
        r for r in target.requests_since(mark) if r.method == "PUT" and f"digest={empty}" in r.path
    ]
    assert len(uploads) == 1


def records_of(seeder: Seeder, subject: str) -> list[dict[str, Any]]:
    """The provenance records the referrers tag of `subject` lists, their content."""
    documents = []
    for entry in referrers_tag(seeder, subject):
        if entry.get("artifactType") == ARTIFACT_TYPE:
            manifest = json.loads(raw_manifest(seeder, str(entry["digest"])) or b"")
            layer = manifest["layers"][0]["digest"]
            documents.append(json.loads(seeder.client.get(f"/v2/{AGENT}/blobs/{layer}").content))
    return documents


class FaultAfterTags(Quiet):
    """Adds `fault` to `proxy` once a tag is written: the copy is over (one tag, no
    referrers), so only the provenance record meets it."""

    def __init__(self, proxy: FaultProxy, fault: Fault) -> None:
        super().__init__(strict=True)
        self.proxy, self.fault = proxy, fault

    def tag_done(self, write: TagWrite) -> None:
        self.proxy.add(self.fault)


REFUSALS = {
    "manifest": Fault(r"/manifests/sha256:", method="PUT", status=500),  # the record itself
    "listing": Fault(r"/manifests/sha256-", method="PUT", status=500),  # its referrers tag
}


def failed_record(runner: Runner, proxy: FaultProxy, refused: str) -> RunReport:
    """A run that wrote 1.5.3 but whose provenance record was refused."""
    fault = REFUSALS[refused]
    with runner.exclusive():
        failed = runner.run(FaultAfterTags(proxy, fault))
    proxy.faults.clear()
    assert failed.state == "failed" and fault.fired > 0
    assert failed.outcome is not None and len(failed.outcome.result.tags) == 1
    assert [what for what, _ in failed.outcome.failures] == [f"provenance of {AGENT}:1.5.3"]
    return failed


def plan_json(upstream: Registry, proxy: FaultProxy, ledger: Ledger) -> Any:
    plan = run_mirror(
        "plan", "--source", upstream.url, "--target", proxy.url, "--repo", AGENT,
        "--ledger", ledger.name, "-o", "json", cwd=Path(ledger.name).parent,
    )  # fmt: skip
    assert plan.returncode == 3, plan.stderr  # nothing to copy, a record to attach
    return json.loads(plan.stdout)


@pytest.mark.parametrize("refused", sorted(REFUSALS))
def test_a_record_that_failed_is_owed_and_the_next_run_attaches_it(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    ledger: Ledger,
    refused: str,
) -> None:
    release = seeder.push_release(AGENT, "1.5.3", oci=True)
    proxy = FaultProxy(target.url).start()
    try:
        runner = Runner(job(upstream.url, proxy.url), ledger)
        failed = failed_record(runner, proxy, refused)
        assert [o.tag for o in ledger.provenance_owed(proxy.url)] == ["1.5.3"]
        assert records_of(target_seeder, release.digest) == []

        [record] = [e for e in plan_json(upstream, proxy, ledger) if e["action"] == "provenance"]
        assert (record["tag"], record["digest"]) == ("1.5.3", release.digest)
        assert failed.run_id and failed.run_id[:8] in record["reason"]
        text = run_mirror(
            "plan", "--source", upstream.url, "--target", proxy.url, "--repo", AGENT,
            "--ledger", ledger.name, cwd=Path(ledger.name).parent,
        ).stdout.splitlines()  # fmt: skip
        assert [line.split()[:2] for line in text if line.startswith("record")] == [
            ["record", f"{AGENT}:1.5.3"]
        ]
        assert text[-1].endswith(", 1 provenance record")

        again = sync(runner)
        assert again.outcome is not None and again.outcome.result.tags == []
        verified = run_mirror(
            "verify", "--source", upstream.url, "--target", proxy.url, "--repo", AGENT,
            "--ledger", ledger.name, cwd=Path(ledger.name).parent,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout
    finally:
        proxy.stop()
    assert ledger.provenance_owed(proxy.url) == []
    [document] = records_of(target_seeder, release.digest)
    assert document["run"]["id"] == failed.run_id  # the run that wrote the tag
    assert document["tag"] == "1.5.3"


def test_a_record_owed_for_a_tag_upstream_deleted_is_attached_if_the_target_has_it(
    upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder, ledger: Ledger
) -> None:
    release = seeder.push_release(AGENT, "1.5.3", oci=True)
    seeder.push_release(AGENT, "1.5.2", oci=True)
    proxy = FaultProxy(target.url).start()
    try:
        runner = Runner(job(upstream.url, proxy.url), ledger)
        refusal = REFUSALS["listing"]
        with runner.exclusive():  # 1.5.2 and 1.5.3 written, both records refused
            failed = runner.run(FaultAfterTags(proxy, refusal))
        proxy.faults.clear()
        assert {o.tag for o in ledger.provenance_owed(proxy.url)} == {"1.5.2", "1.5.3"}
        seeder.delete_manifest(AGENT, release.digest)  # upstream lists 1.5.2 only
        again = sync(runner)  # 1.5.3 not seen upstream: the target is asked
    finally:
        proxy.stop()
    assert again.outcome is not None and again.outcome.result.tags == []
    assert ledger.provenance_owed(proxy.url) == []
    [document] = records_of(target_seeder, release.digest)
    assert (document["tag"], document["run"]["id"]) == ("1.5.3", failed.run_id)


class StopAfterFirstTag(Quiet):
    """Stops the run as soon as one tag is written (as SIGTERM would)."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(strict=True)
        self.stop = stop

    def tag_done(self, write: TagWrite) -> None:
        self.stop.set()


def test_the_tags_a_stopped_run_wrote_get_their_records_from_the_next_run(
    upstream: Registry, target: Registry, seeder: Seeder, target_seeder: Seeder, ledger: Ledger
) -> None:
    releases = {v: seeder.push_release(AGENT, v, oci=True) for v in ("1.5.2", "1.5.3")}
    one_at_a_time = replace(job(upstream.url, target.url), concurrency=1)  # so 1 tag, not 2
    runner = Runner(one_at_a_time, ledger)
    stop = threading.Event()
    with runner.exclusive():
        stopped = runner.run(StopAfterFirstTag(stop), stop=stop)
    assert stopped.state == "interrupted" and stopped.outcome is not None
    first = {w.tag for w in stopped.outcome.result.tags}
    assert first and first < set(releases)
    assert {o.tag for o in ledger.provenance_owed(target.url)} == first

    sync(runner)
    assert ledger.provenance_owed(target.url) == []
    for version, release in releases.items():
        [document] = records_of(target_seeder, release.digest)
        assert document["tag"] == version
        assert (document["run"]["id"] == stopped.run_id) == (version in first)
    assert verify_cli(upstream, target, ledger).returncode == 0


def verify_cli(
    upstream: Registry, target: Registry, ledger: Ledger, *args: str
) -> subprocess.CompletedProcess[str]:
    return mirror_cli("verify", upstream, target, ledger, *args)


def mirror_cli(
    command: str, upstream: Registry, target: Registry, ledger: Ledger, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_mirror(
        command,
        "--source",
        upstream.url,
        "--target",
        target.url,
        "--repo",
        AGENT,
        "--ledger",
        ledger.name,
        *args,
        cwd=Path(ledger.name).parent,
    )


def test_verify_passes_on_a_fresh_mirror_and_names_each_kind_of_damage(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    target_seeder: Seeder,
    signed: Signed,
    ledger: Ledger,
) -> None:
    sync(Runner(job(upstream.url, target.url), ledger))
    fresh = verify_cli(upstream, target, ledger)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "1 tag verified: all hold" in fresh.stdout

    # provenance missing: the records taken out of the index's referrers tag
    listed = referrers_tag(target_seeder, signed.release.digest)
    kept = [e for e in listed if e.get("artifactType") != ARTIFACT_TYPE]
    write_referrers_tag(target_seeder, signed.release.digest, kept)
    assert verify_cli(upstream, target, ledger).returncode == 13
    write_referrers_tag(target_seeder, signed.release.digest, listed)

    # a signature present but no longer listed for its subject counts as missing
    write_referrers_tag(
        target_seeder,
        signed.release.digest,
        [e for e in listed if e["digest"] != signed.signature.digest],
    )
    result = verify_cli(upstream, target, ledger)
    assert result.returncode == 12, result.stdout
    assert "in the target but not listed for it" in result.stdout
    write_referrers_tag(target_seeder, signed.release.digest, listed)

    # a tag moved in the target
    other = target_seeder.push_release(AGENT, "1.5.3", oci=True, salt="moved")
    assert other.digest != signed.release.digest
    assert verify_cli(upstream, target, ledger).returncode == 11
    index = raw_manifest(seeder, signed.release.digest) or b""
    target_seeder.push_manifest(AGENT, "1.5.3", index, OCI_INDEX)  # back where it was

    # a blob deleted from the target's storage: found with the HEAD, and with --deep
    blob = signed.release.blobs[-1]
    data = target.storage / "docker/registry/v2/blobs/sha256" / blob[7:9] / blob[7:] / "data"
    data.unlink()
    for extra in ((), ("--deep",)):
        damaged = verify_cli(upstream, target, ledger, *extra)
        assert damaged.returncode == 10, damaged.stdout + damaged.stderr
        assert blob in damaged.stdout


def test_a_referrers_api_is_used_in_preference_to_the_tag_with_pages_and_a_type_filter(
    tmp_path: Path,
    upstream: Registry,
    target: Registry,
    target_seeder: Seeder,
    ledger: Ledger,
) -> None:
    api = ReferrersStandIn(upstream, page_size=1).start()
    try:
        through = Seeder(api.url)
        release = through.push_release(AGENT, "1.5.3", oci=True)
        index = raw_manifest(through, release.digest) or b""
        signatures = [
            attach(
                through,
                release.digest,
                len(index),
                SIGNATURE,
                f"signature {n}".encode(),
                list_by_tag=False,
            )
            for n in range(3)
        ]
        attach(through, release.digest, len(index), SBOM, b"{}", list_by_tag=False)
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "version: 1\nrules:\n  - repositories: [azureiotedge-agent]\n"
            "    lines: ['1.5']\n    provenance: false\n"
            f"    artifact_types: ['{SIGNATURE}']\n"
        )
        api.counters.reset()
        report = sync(Runner(job(api.url, target.url, policy), ledger))
        assert report.outcome is not None
        assert {c.digest for c in report.outcome.result.referrers} == {
            s.digest for s in signatures
        }  # the SBOM is not of a type the policy carries
        pages = [r for r in api.counters.requests if f"/referrers/{release.digest}" in r.path]
        assert len(pages) == 3  # the registry filters: one signature per page, no SBOM
        assert all(f"artifactType={quote(SIGNATURE, safe='')}" in r.query for r in pages)
        assert api.counters.count("GET", "/manifests/sha256-") == 0  # the API, not the tag
        listed = {str(e["digest"]) for e in referrers_tag(target_seeder, release.digest)}
        assert listed == {s.digest for s in signatures}
        through.close()
    finally:
        api.stop()


def test_a_target_with_the_referrers_api_lists_what_it_receives_without_a_tag(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    signed: Signed,
    ledger: Ledger,
) -> None:
    api = ReferrersStandIn(target).start()
    try:
        sync(Runner(job(upstream.url, api.url), ledger))
        listed = {str(d["digest"]) for d in api.referrers(AGENT, signed.release.digest)}
        assert signed.signature.digest in listed
        assert any(
            d.get("artifactType") == ARTIFACT_TYPE
            for d in api.referrers(AGENT, signed.release.digest)
        )
        assert "/manifests/sha256-" not in " ".join(
            r.path for r in target.requests() if r.method == "PUT"
        )
    finally:
        api.stop()


def test_plan_lists_the_referrers_a_sync_would_bring_and_why(
    upstream: Registry,
    target: Registry,
    seeder: Seeder,
    signed: Signed,
    ledger: Ledger,
) -> None:
    before = mirror_cli("plan", upstream, target, ledger, "--output", "json")
    assert before.returncode == 3, before.stderr
    planned = [e for e in json.loads(before.stdout) if e["action"] == "referrer"]
    assert {(e["digest"], e["subject"], e["artifact_type"]) for e in planned} == {
        (signed.signature.digest, signed.release.digest, SIGNATURE),
        (signed.sbom.digest, signed.platform, SBOM),
        (signed.countersignature.digest, signed.signature.digest, SIGNATURE),
    }
    reasons = {e["digest"]: e["reason"] for e in planned}
    assert reasons[signed.signature.digest] == f"{SIGNATURE} of {AGENT}:1.5.3 (index)"
    text = mirror_cli("plan", upstream, target, ledger)
    assert text.stdout.count("\nrefer ") == 3 and "3 referrers" in text.stdout, text.stdout

    sync(Runner(job(upstream.url, target.url), ledger))
    assert mirror_cli("plan", upstream, target, ledger).returncode == 0

    # A new signature upstream on a tag already mirrored: the ledger says where to look.
    index = raw_manifest(seeder, signed.release.digest) or b""
    later = attach(seeder, signed.release.digest, len(index), SIGNATURE, b"a later signature")
    after = mirror_cli("plan", upstream, target, ledger, "--output", "json")
    assert after.returncode == 3, after.stderr
    assert [e["digest"] for e in json.loads(after.stdout) if e["action"] == "referrer"] == [
        later.digest
    ]

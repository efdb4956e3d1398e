"""`mirror verify`: whether a mirror can be trusted, tag by tag.

For each mirrored tag (every tag of the target's repositories, or those asked for):

    tag         the target's digest is the one the ledger recorded for it (a tag moved
                in the target by someone else is a failure)
    content     every manifest the tag needs and every blob is present (with `deep`,
                each blob is read and hashed)
    referrers   each referrer upstream lists for the tag's manifests is in the target
                and listed there for its subject (by the referrers API or the referrers
                tag: a manifest that exists but is not listed counts as missing)
    provenance  a provenance record for the tag is attached to its index and names
                the same digest
    upstream    upstream still serves the same digest (reported as drift)

Nothing is written. Each kind of finding has its own exit code (`EXIT_CODES`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mirror import digest as _digest
from mirror.engine.connect import open_store
from mirror.engine.pool import map_limited
from mirror.engine.provenance import ARTIFACT_TYPE
from mirror.errors import MirrorError, NotFound
from mirror.governance.versions import parse_tag, sort_tags
from mirror.manifest import Descriptor, Manifest
from mirror.transport.registry import RegistryClient
from mirror.transport.store import Store, tags_or_empty

if TYPE_CHECKING:
    from mirror.engine.job import Job
    from mirror.ledger import Ledger

CONTENT, TAG, REFERRERS, PROVENANCE, UPSTREAM = (
    "content",
    "tag",
    "referrers",
    "provenance",
    "upstream",
)
UNCHECKED = "unchecked"  # a registry could not be asked
# The exit code of a verification, by the most serious kind of finding.
EXIT_CODES = {UNCHECKED: 1, CONTENT: 10, TAG: 11, REFERRERS: 12, PROVENANCE: 13, UPSTREAM: 14}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    repository: str
    tag: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "repository": self.repository, "tag": self.tag,
                "detail": self.detail}  # fmt: skip


@dataclass
class Verification:
    """What was checked and what was found."""

    tags: list[tuple[str, str, str]] = field(default_factory=list)  # repository, tag, digest
    findings: list[Finding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        codes = [EXIT_CODES[finding.kind] for finding in self.findings]
        return min(codes, default=0)


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the mirror should hold, from the ledger and the policy: the digest recorded
    per (repository, tag), and whether provenance records are expected per repository."""

    recorded: Mapping[tuple[str, str], str]
    provenance: Callable[[str], bool]
    referrers: Callable[[str], Sequence[str] | None]  # artifact types (None: not carried)


def mirrored_tags(target: Store, repositories: Iterable[str]) -> list[tuple[str, str]]:
    """Every (repository, tag) the target holds in `repositories` (none for a
    repository it does not have)."""
    wanted = []
    for repository in repositories:
        tags = sort_tags(parse_tag(tag) for tag in tags_or_empty(target, repository))
        wanted += [(repository, tag.text) for tag in tags]
    return wanted


def expectations(
    job: Job, ledger: Ledger, target: Store, wanted: Sequence[tuple[str, str]]
) -> Expectations:
    """What `job`'s target should hold for `wanted`: the digests the ledger recorded,
    and what the policy carries (referrers, of which types; provenance on registries)."""
    recorded: dict[tuple[str, str], str] = {}
    for repository in sorted({repo for repo, _ in wanted}):
        tags = [tag for repo, tag in wanted if repo == repository]
        for tag, record in ledger.recorded(repository, tags, target=job.target).items():
            if record.target is not None:
                recorded[(repository, tag)] = record.target
    governance = job.governance()
    registry = isinstance(target, RegistryClient)

    def referrers(repository: str) -> tuple[str, ...] | None:
        carry = governance.carry_for(repository)
        return carry.artifact_types if carry.referrers else None

    return Expectations(
        recorded=recorded,
        provenance=lambda repository: registry and governance.carry_for(repository).provenance,
        referrers=referrers,
    )


Choose = Callable[[Store], Sequence[tuple[str, str]]]


def verify_job(
    job: Job, ledger: Ledger, *, choose: Choose | None = None, deep: bool = False
) -> Verification:
    """Verify `job`'s target on stores of its own (what it learns of the registries, or
    a failure, stays with it): the (repository, tag) pairs `choose` picks there, by
    default every tag of the job's repositories."""
    source = open_store(job.source, job.config)
    target = open_store(job.target, job.config)
    try:
        wanted = choose(target) if choose else mirrored_tags(target, job.repositories)
        expect = expectations(job, ledger, target, wanted)
        return verify(source, target, wanted, expect, deep=deep, concurrency=job.concurrency)
    finally:
        source.close()
        target.close()


def verify(
    source: Store,
    target: Store,
    wanted: Sequence[tuple[str, str]],
    expect: Expectations,
    *,
    deep: bool = False,
    concurrency: int = 8,
) -> Verification:
    """Check every (repository, tag) in `wanted` (see the module's docstring)."""
    found = Verification()

    def check(job: tuple[str, str]) -> tuple[str | None, list[Finding]]:
        return _check_tag(source, target, job[0], job[1], expect, deep=deep)

    for (repository, tag), (digest, findings) in zip(
        wanted, map_limited(concurrency, check, wanted), strict=True
    ):
        found.tags.append((repository, tag, digest or ""))
        found.findings += findings
    return found


def _check_tag(
    source: Store, target: Store, repository: str, tag: str, expect: Expectations, *, deep: bool
) -> tuple[str | None, list[Finding]]:
    def finding(kind: str, detail: str) -> Finding:
        return Finding(kind, repository, tag, detail)

    try:
        return _checks(source, target, repository, tag, expect, finding, deep=deep)
    except MirrorError as error:
        return None, [finding(UNCHECKED, str(error))]


def _checks(
    source: Store,
    target: Store,
    repository: str,
    tag: str,
    expect: Expectations,
    finding: Callable[[str, str], Finding],
    *,
    deep: bool,
) -> tuple[str | None, list[Finding]]:
    there = target.resolve(repository, tag)
    if there is None:
        return None, [finding(CONTENT, "the tag is not in the target")]
    findings: list[Finding] = []
    recorded = expect.recorded.get((repository, tag))
    if recorded is not None and recorded != there.digest:
        findings.append(finding(TAG, f"points at {there.digest}; the ledger recorded {recorded}"))
    manifests, missing = _content(target, repository, there.digest, deep=deep)
    findings += [finding(CONTENT, detail) for detail in missing]
    upstream = source.resolve(repository, tag)
    if upstream is not None and upstream.digest != there.digest:
        findings.append(finding(UPSTREAM, f"upstream now serves {upstream.digest}"))
    types = expect.referrers(repository)
    if types is not None and upstream is not None and upstream.digest == there.digest:
        subjects = [there.digest, *(d for d in manifests if d != there.digest)]
        findings += [
            finding(kind, detail)
            for kind, detail in _referrers(source, target, repository, subjects, types)
        ]
    if expect.provenance(repository):
        problem = _provenance(target, repository, tag, there)
        if problem:
            findings.append(finding(PROVENANCE, problem))
    return there.digest, findings


def _content(
    target: Store, repository: str, digest: str, *, deep: bool
) -> tuple[list[str], list[str]]:
    """The manifests under `digest` (itself first), and what is missing or corrupt."""
    seen: list[str] = []
    missing: list[str] = []
    pending = [digest]
    while pending:
        current = pending.pop(0)
        try:
            manifest = target.get_manifest(repository, current, current)
        except NotFound:
            missing.append(f"manifest {current} is missing")
            continue
        seen.append(current)
        pending += [child.digest for child in manifest.children()]
        missing += [_blob_problem(target, repository, blob, deep=deep) for blob in manifest.blobs()]
    return seen, [problem for problem in missing if problem]


def _blob_problem(target: Store, repository: str, blob: Descriptor, *, deep: bool) -> str:
    if not deep:
        return "" if target.has_blob(repository, blob) else f"blob {blob.digest} is missing"
    verifier = _digest.Verifier(blob.digest, blob.size)
    try:
        with target.read_blob(repository, blob) as chunks:
            for chunk in chunks:
                verifier.update(chunk)
        verifier.verify()
    except NotFound:
        return f"blob {blob.digest} is missing"
    except MirrorError as error:
        return f"blob {blob.digest} does not verify: {error}"
    return ""


def _referrers(
    source: Store, target: Store, repository: str, subjects: Iterable[str], types: Sequence[str]
) -> list[tuple[str, str]]:
    """Each referrer upstream lists (of the types carried) that the target does not; and
    each the target lists that upstream no longer does (the mirror keeps it: drift)."""
    problems = []
    for subject in subjects:
        upstream = source.referrers(repository, subject, types)
        listed = target.referrers(repository, subject)
        for referrer in upstream.descriptors:
            if referrer.digest in listed.digests:
                continue
            kind = referrer.artifact_type or "referrer"
            exists = target.resolve(repository, referrer.digest) is not None
            state = "in the target but not listed for it" if exists else "missing"
            problems.append((REFERRERS, f"{kind} {referrer.digest} of {subject} is {state}"))
        for kept in listed.of_types(types).descriptors:
            if kept.digest not in upstream.digests and kept.artifact_type != ARTIFACT_TYPE:
                kind = kept.artifact_type or "referrer"
                problems.append(
                    (UPSTREAM, f"{kind} {kept.digest} of {subject} is no longer upstream")
                )
    return problems


def _provenance(target: Store, repository: str, tag: str, there: Descriptor) -> str:
    """Why the tag's provenance record is not right, or "" when it is."""
    records = [
        d
        for d in target.referrers(repository, there.digest).descriptors
        if d.artifact_type == ARTIFACT_TYPE
    ]
    if not records:
        return f"no provenance record is attached to {there.digest}"
    for descriptor in records:
        document = _record(target, repository, descriptor)
        if document is not None and document.get("tag") == tag:
            named = document.get("target")
            target_digest = named.get("digest") if isinstance(named, dict) else None
            if target_digest == there.digest:
                return ""
            return f"the provenance record names {target_digest}, not {there.digest}"
    return f"no provenance record of {there.digest} names the tag {tag}"


def _record(target: Store, repository: str, descriptor: Descriptor) -> dict[str, Any] | None:
    """The JSON content of a provenance record (its one layer)."""
    manifest: Manifest = target.get_manifest(repository, descriptor.digest, descriptor.digest)
    layers = manifest.blobs()[1:]
    if not layers:
        return None
    with target.read_blob(repository, layers[0]) as chunks:
        raw = b"".join(_digest.verified(chunks, layers[0].digest, layers[0].size))
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None

"""The referrers phase of a run: which signatures, SBOMs and attestations to bring along.

For every manifest a run writes (a tag's index and each manifest it lists), ask the
source which referrers it lists (`Store.referrers`: the referrers API, or the
referrers tag), keep those of the artifact types the policy carries, and compare with
what the target lists; each one missing is fetched (verified against its digest) and
planned for the copy, then surveyed in turn for its own referrers, down to
`MAX_DEPTH`.

For tags already up to date, only the subjects the ledger remembers as having
referrers are asked again, each with one request (`Store.referrers_changed`, against
the fingerprint recorded last time): a sync with nothing to do stays cheap. A tag the
ledger has no record of (mirrored before referrers were carried) is surveyed in full
once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mirror.engine.plan import ReferrerCopy, TagStep
from mirror.engine.pool import map_limited
from mirror.errors import DigestMismatch, ManifestError, MirrorError
from mirror.governance.decide import Carry, Governance
from mirror.manifest import Manifest
from mirror.referrers import MAX_DEPTH, Referrers
from mirror.transport.store import Store

Key = tuple[str, str]  # (repository, digest)
# What the ledger remembers, per (repository, root digest of a tag): every subject
# surveyed under it, with the fingerprint of its referrers list ("" when it had none).
Memory = Mapping[Key, Mapping[str, str]]

RETRY = "!"  # the fingerprint recorded when copying a subject's referrers failed


@dataclass(frozen=True, slots=True)
class Subject:
    """A manifest whose referrers are surveyed: under which tag (`root` is the digest
    the tag points at), in what role (index, a platform, a signature...), how deep in
    a chain of referrers, and whether the target cannot list anything for it yet (it
    is new there)."""

    repository: str
    digest: str
    root: str
    tag: str
    role: str
    depth: int = 0
    new: bool = False
    known: str | None = None  # the fingerprint the ledger remembers, if any


@dataclass(frozen=True, slots=True)
class SubjectState:
    """What to remember of one subject after the run: its referrers' fingerprint."""

    repository: str
    root: str
    subject: str
    fingerprint: str


@dataclass
class Survey:
    """The referrers to copy (subjects before their referrers), the manifests they
    list (for referrers that are indexes), what to remember, and what failed."""

    copies: list[ReferrerCopy] = field(default_factory=list)
    manifests: dict[Key, Manifest] = field(default_factory=dict)
    states: list[SubjectState] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def subjects_of(
    steps: Sequence[TagStep],
    manifests: Mapping[Key, Manifest],
    present: Iterable[Key],
    memory: Memory | None,
    governance: Governance,
) -> tuple[list[Subject], list[tuple[str, str, str]]]:
    """The subjects to survey: every manifest of the tags to write, and, of the tags up
    to date, the remembered subjects that had referrers. Also the up-to-date tags with
    no memory at all, as (repository, tag, root): their manifests are needed first.
    Without a `memory` (None: no ledger to keep one), tags up to date are left alone."""
    have = set(present)
    subjects: dict[Key, Subject] = {}
    unknown: list[tuple[str, str, str]] = []
    for step in steps:
        if not governance.carry_for(step.repository).referrers or step.source_digest is None:
            continue
        key = (step.repository, step.source_digest)
        remembered = memory.get(key) if memory is not None else None
        if step.pending:
            top = manifests[key]
            found = _tree(step.repository, step.tag, top, new=key not in have, memory=remembered)
        elif memory is None or step.target_digest != step.source_digest:
            continue
        elif remembered is None:
            unknown.append((step.repository, step.tag, step.source_digest))
            continue
        else:
            found = [
                Subject(step.repository, digest, key[1], step.tag, "referrer", known=fingerprint)
                for digest, fingerprint in remembered.items()
                if fingerprint
            ]
        for subject in found:
            subjects.setdefault((subject.repository, subject.digest), subject)
    return list(subjects.values()), unknown


def _tree(
    repository: str, tag: str, top: Manifest, *, new: bool, memory: Mapping[str, str] | None
) -> list[Subject]:
    """A tag's top manifest and every manifest it lists, as subjects (with what the
    ledger remembers of each)."""
    memory = memory or {}
    roles = [(top.digest, "index" if top.is_index else "image")]
    roles += [
        (child.digest, "attestation" if child.is_attestation else str(child.platform or "manifest"))
        for child in top.children()
    ]
    return [
        Subject(repository, digest, top.digest, tag, role, new=new, known=memory.get(digest))
        for digest, role in roles
    ]


def survey(
    source: Store,
    target: Store,
    subjects: Sequence[Subject],
    governance: Governance,
    *,
    concurrency: int = 8,
) -> Survey:
    """Ask about each subject, level by level (a referrer's own referrers after it)."""
    found = Survey()
    level = list(subjects)
    while level:
        results = map_limited(concurrency, lambda s: _ask(source, target, s, governance), level)
        following: list[Subject] = []
        for subject, result in zip(level, results, strict=True):
            following += _absorb(found, subject, result)
        level = [s for s in following if s.depth < MAX_DEPTH]
    return found


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one subject's survey found: its listing (None: unchanged since last time),
    the referrers to copy with the manifests they list, and those already there."""

    listing: Referrers | None
    missing: list[tuple[Manifest, list[Manifest]]]
    present: list[str]


def _ask(source: Store, target: Store, subject: Subject, governance: Governance) -> _Answer | str:
    carry = governance.carry_for(subject.repository)
    try:
        listing = _listing(source, subject, carry)
        if listing is None or not listing.descriptors:
            return _Answer(listing, [], [])
        there = (
            frozenset()
            if subject.new
            else target.referrers(subject.repository, subject.digest).digests
        )
        missing = [d.digest for d in listing.descriptors if d.digest not in there]
        fetched = [_fetch_tree(source, subject.repository, digest) for digest in missing]
        return _Answer(listing, fetched, sorted(listing.digests & there))
    except (MirrorError, ManifestError, DigestMismatch) as error:
        return str(error)


def _listing(source: Store, subject: Subject, carry: Carry) -> Referrers | None:
    if subject.known is not None and subject.known != RETRY:
        return source.referrers_changed(
            subject.repository, subject.digest, subject.known, carry.artifact_types
        )
    return source.referrers(subject.repository, subject.digest, carry.artifact_types)


def _fetch_tree(source: Store, repository: str, digest: str) -> tuple[Manifest, list[Manifest]]:
    """A referrer's manifest and, when it is an index, the manifests it lists."""
    manifest = source.get_manifest(repository, digest, digest)
    children = [source.get_manifest(repository, c.digest, c.digest) for c in manifest.children()]
    return manifest, children


def _absorb(found: Survey, subject: Subject, result: _Answer | str) -> list[Subject]:
    """Add one subject's answer to the survey; the subjects it leads to."""
    name = f"{subject.repository}@{subject.digest}"
    if isinstance(result, str):
        found.failures.append((f"the referrers of {name}", result))
        found.states.append(SubjectState(subject.repository, subject.root, subject.digest, RETRY))
        return []
    if result.listing is None:  # unchanged: remembered as it was
        assert subject.known is not None
        found.states.append(
            SubjectState(subject.repository, subject.root, subject.digest, subject.known)
        )
        return []
    found.states.append(
        SubjectState(subject.repository, subject.root, subject.digest, result.listing.fingerprint)
    )
    following = []
    types = {d.digest: d.artifact_type for d in result.listing.descriptors}
    for manifest, children in result.missing:
        kind = types.get(manifest.digest) or manifest.artifact_type or "artifact"
        reason = f"{kind} of {subject.repository}:{subject.tag} ({subject.role})"
        found.copies.append(ReferrerCopy(subject.repository, subject.digest, manifest, reason))
        found.manifests[(subject.repository, manifest.digest)] = manifest
        for child in children:
            found.manifests[(subject.repository, child.digest)] = child
        following.append(_referrer_subject(subject, manifest.digest, kind, new=True))
    following += [
        _referrer_subject(subject, d, types.get(d) or "referrer", new=False) for d in result.present
    ]
    return following


def _referrer_subject(subject: Subject, digest: str, kind: str, *, new: bool) -> Subject:
    return Subject(
        subject.repository, digest, subject.root, subject.tag, kind, subject.depth + 1, new=new
    )


def subjects_of_unknown(
    source: Store, unknown: Sequence[tuple[str, str, str]], *, concurrency: int = 8
) -> tuple[list[Subject], list[tuple[str, str]]]:
    """The subjects of up-to-date tags the ledger has no record of: their manifest and
    every manifest it lists (one GET of the top manifest from the source each)."""

    def tree(job: tuple[str, str, str]) -> list[Subject] | str:
        repository, tag, root = job
        try:
            top = source.get_manifest(repository, root, root)
        except (MirrorError, ManifestError, DigestMismatch) as error:
            return str(error)
        return _tree(repository, tag, top, new=False, memory=None)

    subjects: list[Subject] = []
    failures: list[tuple[str, str]] = []
    for (repository, tag, _), found in zip(
        unknown, map_limited(concurrency, tree, unknown), strict=True
    ):
        if isinstance(found, str):
            failures.append((f"the referrers of {repository}:{tag}", found))
        else:
            subjects += found
    return subjects, failures

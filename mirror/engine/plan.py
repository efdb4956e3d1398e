"""Planning a sync, as pure functions returning steps with reasons.

Three stages, all free of I/O:

* `plan_tags`: from what each registry says a tag points at (and the policy's
  verdicts), decide per tag `create` / `update` / `skip` / `hold`, and why
  (`governance.decide`: specific tags are never overwritten, rolling tags move forward).
* `plan_content`: from the manifests of the tags to write, list what the target needs
  in the order that keeps it consistent: blobs (each digest once per repository,
  mounted across repositories), child manifests by digest, then each tag last.
* `plan_locks`: which specific tags to lock on ACR, and why.

`mirror plan` prints the first and the last; `mirror sync` executes all three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mirror.governance.decide import Action, Governance, OnRebuild, decide
from mirror.governance.versions import TagKind, parse_tag
from mirror.manifest import Descriptor, Manifest

Needs = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Observed:
    """What one tag points at in the source and in the target (None: absent)."""

    repository: str
    tag: str
    source: Descriptor | None
    target: Descriptor | None


@dataclass(frozen=True, slots=True)
class TagStep:
    """The decision for one tag, with the reason a user reads in `mirror plan`.

    `drift` marks a specific tag that upstream moved after it was mirrored.
    """

    repository: str
    tag: str
    action: Action
    reason: str
    source_digest: str | None = None
    target_digest: str | None = None
    kind: str | None = None
    drift: bool = False

    @property
    def pending(self) -> bool:
        """True when the sync will write this tag."""
        return self.action in (Action.CREATE, Action.UPDATE)


def plan_tags(
    observed: Iterable[Observed],
    governance: Governance | None = None,
    mirrored: Mapping[str, Mapping[str, str]] | None = None,
) -> list[TagStep]:
    """One decision per observed tag (plus derived tags for rebuilds), sorted.

    Specific tags are never overwritten and rolling tags only move forward (see
    `policy.decide`); tags of neither kind are copied when they differ. `mirrored`
    maps repository -> target tag -> digest for target tags beyond the observed ones
    (earlier derived tags), so a rebuild is mirrored under a derived tag only once.
    """
    governance = governance or Governance()
    by_repository: dict[str, list[Observed]] = {}
    for item in observed:
        by_repository.setdefault(item.repository, []).append(item)
    steps: list[TagStep] = []
    for repository, items in by_repository.items():
        upstream = {o.tag: o.source.digest for o in items if o.source is not None}
        target = dict((mirrored or {}).get(repository, {}))
        target.update({o.tag: o.target.digest for o in items if o.target is not None})
        for item in items:
            steps += _decide(item, upstream, target, governance)
    return in_version_order(steps)


def in_version_order(steps: Iterable[TagStep]) -> list[TagStep]:
    """Per repository, in IoT Edge version order: lines, then versions, then the
    rolling tag (as `mirror plan` lists them)."""
    return sorted(steps, key=lambda step: (step.repository, parse_tag(step.tag).sort_key))


def _decide(
    item: Observed,
    upstream: Mapping[str, str],
    target: Mapping[str, str],
    governance: Governance,
) -> list[TagStep]:
    source_digest = item.source.digest if item.source else None
    target_digest = item.target.digest if item.target else None
    tag = parse_tag(item.tag)
    step = TagStep(
        item.repository, item.tag, Action.SKIP, "", source_digest, target_digest, tag.kind.value
    )
    if source_digest is None:
        return [replace(step, reason="skip: listed in the source, but its manifest is not there")]
    if tag.kind is TagKind.OTHER:
        return [_decide_plain(step)]
    decision = decide(
        tag,
        source_digest,
        target_digest,
        upstream,
        allow_backwards=governance.allow_backwards,
        on_rebuild=governance.on_rebuild.get(item.repository, OnRebuild.HOLD),
        today=governance.today,
        target_tags=target,
    )
    steps = [replace(step, action=decision.action, reason=decision.reason, drift=decision.drift)]
    if decision.derived_tag is not None:
        reason = f"create: rebuilt {item.tag} mirrored as {decision.derived_tag}"
        derived = TagStep(
            item.repository,
            decision.derived_tag,
            Action.CREATE,
            reason,
            source_digest,
            kind=TagKind.SPECIFIC.value,
        )
        steps.append(derived)
    return steps


def _decide_plain(step: TagStep) -> TagStep:
    """Tags outside the version grammar: create when absent, update when moved."""
    if step.target_digest is None:
        return replace(step, action=Action.CREATE, reason="create: new tag")
    if step.target_digest == step.source_digest:
        return replace(step, action=Action.SKIP, reason="skip: up to date")
    assert step.source_digest is not None
    reason = f"update: {_short(step.target_digest)} -> {_short(step.source_digest)}"
    return replace(step, action=Action.UPDATE, reason=reason)


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


# -- locks ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockStep:
    """A specific tag to lock in the target (ACR: write and delete disabled on the tag,
    its index and every child manifest). `after_write`: only once the sync wrote it."""

    repository: str
    tag: str
    reason: str
    after_write: bool = False


def plan_locks(
    steps: Iterable[TagStep], states: Mapping[str, Mapping[str, bool]]
) -> list[LockStep]:
    """Specific tags that will be, or already are, in the target and are not locked.

    `states` maps repository -> tag -> locked, as the target reports it; a tag the
    sync creates is locked after it is written. Locking is idempotent: a tag already
    locked plans nothing.
    """
    locks = []
    for step in steps:
        if step.kind != TagKind.SPECIFIC.value:
            continue
        if step.pending:
            locks.append(LockStep(step.repository, step.tag, "lock: new specific tag", True))
        elif step.target_digest is not None and not states.get(step.repository, {}).get(
            step.tag, False
        ):
            locks.append(LockStep(step.repository, step.tag, "lock: specific tag is not locked"))
    return locks


# -- content -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlobCopy:
    """A blob the target repository needs. `mount_from` names a repository of the
    target that will hold it first (so it is uploaded once, then mounted)."""

    repository: str
    descriptor: Descriptor
    reason: str
    mount_from: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestCopy:
    """A manifest pushed by digest once everything it references is in place."""

    repository: str
    manifest: Manifest
    reason: str
    needs_manifests: tuple[str, ...] = ()
    needs_blobs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TagWrite:
    """The last step for a tag: push the top manifest under the tag."""

    repository: str
    tag: str
    manifest: Manifest
    needs_manifests: tuple[str, ...] = ()
    needs_blobs: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """The digest written under the tag."""
        return self.manifest.digest


@dataclass(frozen=True, slots=True)
class ReferrerCopy:
    """A referrer to bring along (a signature, an SBOM): pushed by digest once its
    content and its `subject` are complete in the target, then listed for the subject."""

    repository: str
    subject: str
    manifest: Manifest
    reason: str
    needs_manifests: tuple[str, ...] = ()
    needs_blobs: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return self.manifest.digest


@dataclass(slots=True)
class ContentPlan:
    blobs: list[BlobCopy] = field(default_factory=list)
    manifests: list[ManifestCopy] = field(default_factory=list)
    tags: list[TagWrite] = field(default_factory=list)
    referrers: list[ReferrerCopy] = field(default_factory=list)

    @property
    def bytes_total(self) -> int:
        return sum(blob.descriptor.size for blob in self.blobs if blob.mount_from is None)


def plan_content(
    steps: Sequence[TagStep],
    manifests: Mapping[tuple[str, str], Manifest],
    present: Iterable[tuple[str, str]] = (),
    referrers: Sequence[ReferrerCopy] = (),
) -> ContentPlan:
    """Everything the pending `steps` need, blobs before manifests before tags, then
    the `referrers` to bring along (each after its subject).

    `manifests` maps (repository, digest) to every manifest reachable from the
    pending tags (indexes and their children) and from the referrers; `present`
    lists (repository, digest) of manifests the target is known to hold already
    (another tag points at them), whose content is therefore not planned again.
    """
    plan = ContentPlan()
    have = set(present)
    needs_of: dict[tuple[str, str], Needs] = {}
    planned_blobs: set[tuple[str, str]] = set()
    first: dict[str, str] = {}

    def content(repository: str, label: str, manifest: Manifest) -> Needs:
        return _plan_manifest(
            plan, repository, label, manifest, manifests, have, needs_of, planned_blobs, first
        )

    for step in steps:
        if not step.pending or step.source_digest is None:
            continue
        top = manifests[(step.repository, step.source_digest)]
        needs = content(step.repository, f"{step.repository}:{step.tag}", top)
        plan.tags.append(
            TagWrite(step.repository, step.tag, top, needs_manifests=needs[0], needs_blobs=needs[1])
        )
    for copy in referrers:
        needs = content(copy.repository, copy.reason, copy.manifest)
        plan.referrers.append(
            replace(copy, needs_manifests=(*needs[0], copy.subject), needs_blobs=needs[1])
        )
    plan.blobs.sort(key=lambda blob: (blob.mount_from is not None, -blob.descriptor.size))
    return plan


def _plan_manifest(
    plan: ContentPlan,
    repository: str,
    label: str,
    manifest: Manifest,
    manifests: Mapping[tuple[str, str], Manifest],
    have: set[tuple[str, str]],
    needs_of: dict[tuple[str, str], Needs],
    planned_blobs: set[tuple[str, str]],
    first: dict[str, str],
) -> Needs:
    """Plan `manifest`'s content; return the (manifests, blobs) its push waits for.

    `label` names what the content is for (`azureiotedge-agent:1.5.3`) in reasons;
    `have` holds what is present or already planned, `needs_of` what a planned
    manifest waits for, `first` the repository each blob digest goes to first.
    """
    key = (repository, manifest.digest)
    if key in have:
        return needs_of.get(key, ((), ()))
    have.add(key)
    child_digests: list[str] = []
    for child in manifest.children():
        child_manifest = manifests[(repository, child.digest)]
        needs = _plan_manifest(
            plan, repository, label, child_manifest, manifests, have, needs_of, planned_blobs, first
        )
        reason = _child_reason(label, child)
        plan.manifests.append(
            ManifestCopy(
                repository, child_manifest, reason, needs_manifests=needs[0], needs_blobs=needs[1]
            )
        )
        child_digests.append(child.digest)
    blob_digests: list[str] = []
    config = _config_digest(manifest)
    for blob in manifest.blobs():
        blob_digests.append(blob.digest)
        if (repository, blob.digest) in planned_blobs:
            continue
        planned_blobs.add((repository, blob.digest))
        owner = first.setdefault(blob.digest, repository)
        mount_from = owner if owner != repository else None
        role = "config" if blob.digest == config else "layer"
        reason = f"{role} of {label}"
        plan.blobs.append(BlobCopy(repository, blob, reason, mount_from))
    needs = (tuple(child_digests), tuple(blob_digests))
    needs_of[key] = needs
    return needs


def _child_reason(label: str, child: Descriptor) -> str:
    platform = str(child.platform) if child.platform else "manifest"
    if child.is_attestation:
        platform = "attestation"
    return f"{platform} of {label}"


def _config_digest(manifest: Manifest) -> str | None:
    config = manifest.document.get("config")
    return str(config.get("digest")) if isinstance(config, dict) else None

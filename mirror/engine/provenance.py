"""Provenance records: after a run writes a tag into a registry, it attaches to the
mirrored index an artifact saying where the content came from.

The record (`application/vnd.mirror.provenance.v1+json`, schema in
`mirror/data/provenance-v1.schema.json`) names the source and target references and
digests, when and by which run and version of mirror the tag was written, the
policy's decision and the tag's lock state. It is an OCI referrer of the index
(`subject`), so `oras discover` and any OCI 1.1 client list it; it is pushed with
oras-py (`transport.artifacts`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mirror import __version__
from mirror.engine.plan import TagStep, TagWrite
from mirror.engine.pool import map_limited
from mirror.errors import MirrorError
from mirror.governance.decide import Governance
from mirror.manifest import Manifest
from mirror.settings.config import Config
from mirror.transport.artifacts import ArtifactPusher
from mirror.transport.registry import RegistryClient

if TYPE_CHECKING:
    from mirror.engine.sync import SyncOutcome

ARTIFACT_TYPE = "application/vnd.mirror.provenance.v1+json"
LOCKED, UNLOCKED, NO_LOCKS = "locked", "unlocked", "not-supported"


@dataclass(frozen=True, slots=True)
class Run:
    """The run a record names."""

    id: str
    source: str
    target: str
    triggered_by: str
    when: datetime


def record(
    run: Run, write: TagWrite, step: TagStep | None, target_repository: str, lock: str
) -> dict[str, Any]:
    """The provenance record of one tag the run wrote."""
    decision = (
        {"action": step.action.value, "reason": step.reason, "kind": step.kind} if step else {}
    )
    return {
        "mediaType": ARTIFACT_TYPE,
        "source": {
            "registry": run.source,
            "repository": write.repository,
            "reference": f"{run.source}/{write.repository}:{write.tag}",
            "digest": write.digest,
        },
        "target": {
            "registry": run.target,
            "repository": target_repository,
            "reference": f"{run.target}/{write.repository}:{write.tag}",
            "digest": write.digest,
        },
        "tag": write.tag,
        "mirrored": run.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": {"id": run.id, "triggeredBy": run.triggered_by},
        "mirror": {"version": __version__},
        "policy": decision,
        "lock": lock,
    }


def encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def record_annotations(document: Mapping[str, Any]) -> dict[str, str]:
    """The manifest's annotations: enough for `oras discover` to tell records apart."""
    return {
        "org.opencontainers.image.created": str(document["mirrored"]),
        "org.opencontainers.image.ref.name": str(document["tag"]),
        "vnd.mirror.run": str(document["run"]["id"]),
    }


@dataclass
class Attached:
    """The records attached, and those that could not be: (what, why)."""

    records: list[Manifest] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


Push = Callable[[TagWrite, dict[str, Any]], Manifest]


def attach(
    run: Run,
    written: Sequence[TagWrite],
    steps: Iterable[TagStep],
    lock_of: Callable[[TagWrite], str],
    target_repository: Callable[[str], str],
    push: Push,
    *,
    concurrency: int = 8,
) -> Attached:
    """Push one record per tag written (`push` sends it); a failure fails that record."""
    decided = {(s.repository, s.tag): s for s in steps}

    def one(write: TagWrite) -> Manifest | str:
        step = decided.get((write.repository, write.tag))
        document = record(run, write, step, target_repository(write.repository), lock_of(write))
        try:
            return push(write, document)
        except MirrorError as error:
            return str(error)

    done = Attached()
    for write, result in zip(written, map_limited(concurrency, one, written), strict=True):
        if isinstance(result, Manifest):
            done.records.append(result)
        else:
            done.failures.append((f"provenance of {write.repository}:{write.tag}", result))
    return done


def attach_provenance(
    target: RegistryClient,
    run: Run,
    outcome: SyncOutcome,
    governance: Governance,
    config: Config,
    *,
    acr: bool,
) -> Attached:
    """A record for every tag the run wrote into the registry `target`, where the policy
    asks for one, pushed with oras-py as mirror's own identity there."""
    written = [w for w in outcome.result.tags if governance.carry_for(w.repository).provenance]
    if not written:
        return Attached()
    settings = config.registry(target.endpoint.host)
    pusher = ArtifactPusher(target, verify=str(settings.ca_bundle) if settings.ca_bundle else True)
    locked = set(outcome.locked)

    def lock_of(write: TagWrite) -> str:
        if not acr:
            return NO_LOCKS
        return LOCKED if (write.repository, write.tag) in locked else UNLOCKED

    def push(write: TagWrite, document: dict[str, Any]) -> Manifest:
        subject = write.manifest.descriptor()
        content = encode(document)
        return pusher.push(
            write.repository, subject, ARTIFACT_TYPE, content, record_annotations(document)
        )

    return attach(run, written, outcome.steps, lock_of, target.full_name, push)

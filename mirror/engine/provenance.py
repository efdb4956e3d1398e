"""Provenance records: after a run writes a tag into a registry, it attaches to the
mirrored index an artifact saying where the content came from.

The record (`application/vnd.mirror.provenance.v1+json`, schema in
`mirror/data/provenance-v1.schema.json`) names the source and target references and
digests, when and by which run and version of mirror the tag was written, the
policy's decision and the tag's lock state. It is an OCI referrer of the index
(`subject`), so `oras discover` and any OCI 1.1 client list it; it is pushed with
oras-py (`transport.artifacts`).

A record that could not be pushed, or that a stopped run never pushed, is owed: the
ledger keeps it as built, and a later run that finds its tag still at the same digest
attaches it (`due`, then `attach`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mirror import __version__
from mirror.engine.plan import TagStep, TagWrite
from mirror.engine.pool import map_limited
from mirror.errors import MirrorError, RegistryError
from mirror.governance.decide import Governance
from mirror.ledger import Owed
from mirror.manifest import Descriptor, Manifest
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
    """The records attached; those that could not be (`failures`: what, why); the
    records this run leaves owed (its own: the ledger already keeps earlier ones), and
    the tags whose record is owed no more (`settled`: attached now, or the tag has
    moved on)."""

    records: list[Manifest] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    owed: list[Owed] = field(default_factory=list)
    settled: list[tuple[str, str]] = field(default_factory=list)


Push = Callable[[str, Descriptor, bytes, Mapping[str, str]], Manifest]


def build(
    run: Run,
    written: Sequence[TagWrite],
    steps: Iterable[TagStep],
    lock_of: Callable[[TagWrite], str],
    target_repository: Callable[[str], str],
) -> list[Owed]:
    """The record of every tag in `written`, not yet attached."""
    decided = {(s.repository, s.tag): s for s in steps}
    return [
        Owed(
            write.repository,
            write.tag,
            write.digest,
            encode(
                record(
                    run,
                    write,
                    decided.get((write.repository, write.tag)),
                    target_repository(write.repository),
                    lock_of(write),
                )
            ).decode(),
        )
        for write in written
    ]


@dataclass
class Due:
    """What becomes of the records earlier runs owe, given what a run saw."""

    now: list[Owed] = field(default_factory=list)  # the tag is still at the digest: attach
    settled: list[tuple[str, str]] = field(default_factory=list)  # owed no more
    unseen: list[Owed] = field(default_factory=list)  # not looked at: ask the target


def due(
    owed: Iterable[Owed],
    steps: Iterable[TagStep],
    written: Iterable[TagWrite],
    governance: Governance,
    listed: Collection[str] = (),
) -> Due:
    """Sort the records earlier runs owe by what this run saw of their tags.

    Due `now`: the tag is still at the record's digest. `settled`: the run wrote the
    tag again (a new record comes with it), the tag moved or is gone, or the policy no
    longer asks for records. `unseen`: the run looked at the whole repository
    (`listed`) but not at the tag (upstream no longer lists it, or the selection left
    it out), so only the target can say. In none of the lists: the run did not look
    at the repository (a scoped run); the debt waits for one that does.
    """
    seen = {
        (s.repository, s.tag): s.target_digest for s in steps if s.source_digest or s.target_digest
    }
    rewritten = {(w.repository, w.tag) for w in written}
    found = Due()
    for debt in owed:
        key = (debt.repository, debt.tag)
        if not governance.carry_for(debt.repository).provenance or key in rewritten:
            found.settled.append(key)
        elif key in seen and seen[key] == debt.digest:
            found.now.append(debt)
        elif key in seen:
            found.settled.append(key)
        elif debt.repository in listed:
            found.unseen.append(debt)
    return found


def planned(owed: Iterable[Owed], steps: Sequence[TagStep], governance: Governance) -> list[Owed]:
    """The records owed by earlier runs that a sync over `steps` would attach, of the
    tags it saw (what `mirror plan` shows); a tag it rewrites gets a new record."""
    return due(owed, [s for s in steps if not s.pending], (), governance).now


def owed_by_run(debt: Owed) -> str:
    """The id of the run that built the record."""
    run = json.loads(debt.document).get("run", {})
    return str(run.get("id", "")) if isinstance(run, dict) else ""


def look_again(target: RegistryClient, found: Due) -> None:
    """Settle the `unseen` debts by asking the target: a tag still at the record's
    digest is due now, one that moved or is gone is settled; a tag the target cannot
    be asked about waits for a later run."""

    def where(debt: Owed) -> str | None:
        try:
            there = target.resolve(debt.repository, debt.tag)
        except MirrorError:
            return None
        return there.digest if there is not None else ""

    for debt, digest in zip(found.unseen, map_limited(8, where, found.unseen), strict=True):
        if digest == debt.digest:
            found.now.append(debt)
        elif digest is not None:
            found.settled.append((debt.repository, debt.tag))
    found.unseen = []


def attach(
    records: Sequence[Owed],
    subject_of: Callable[[Owed], Descriptor],
    push: Push,
    *,
    concurrency: int = 8,
) -> Attached:
    """Push each record (`push` sends it); one that fails stays owed."""

    def one(debt: Owed) -> Manifest | str:
        document = json.loads(debt.document)
        try:
            subject = subject_of(debt)
            content = debt.document.encode()
            return push(debt.repository, subject, content, record_annotations(document))
        except MirrorError as error:
            return str(error)

    done = Attached()
    for debt, result in zip(records, map_limited(concurrency, one, records), strict=True):
        if isinstance(result, Manifest):
            done.records.append(result)
            done.settled.append((debt.repository, debt.tag))
        else:
            done.failures.append((f"provenance of {debt.repository}:{debt.tag}", result))
            done.owed.append(debt)
    return done


def attach_provenance(
    target: RegistryClient,
    run: Run,
    outcome: SyncOutcome,
    governance: Governance,
    config: Config,
    *,
    acr: bool,
    owed: Sequence[Owed] = (),
    listed: Collection[str] = (),
) -> Attached:
    """A record for every tag the run wrote into the registry `target`, where the policy
    asks for one, pushed with oras-py as mirror's own identity there; and the records
    earlier runs owe (`owed`) for tags still where they were (see `due`; `listed`: the
    repositories the run looked at in full). A run that was stopped attaches nothing:
    what it wrote is owed."""
    written = [w for w in outcome.result.tags if governance.carry_for(w.repository).provenance]
    locked = set(outcome.locked)

    def lock_of(write: TagWrite) -> str:
        if not acr:
            return NO_LOCKS
        return LOCKED if (write.repository, write.tag) in locked else UNLOCKED

    new = build(run, written, outcome.steps, lock_of, target.full_name)
    earlier = due(owed, outcome.steps, outcome.result.tags, governance, listed)
    if outcome.interrupted:
        return Attached(owed=new, settled=earlier.settled)
    look_again(target, earlier)
    pending = [*new, *earlier.now]
    if not pending:
        return Attached(settled=earlier.settled)
    subjects = {w.digest: w.manifest.descriptor() for w in written}

    def subject_of(debt: Owed) -> Descriptor:
        if debt.digest in subjects:
            return subjects[debt.digest]
        found = target.resolve(debt.repository, debt.digest)
        if found is None:
            raise RegistryError(f"{target.name}: {debt.repository}@{debt.digest} is gone")
        return found

    done = attach(pending, subject_of, _pushing_to(target, config))
    done.owed = [debt for debt in done.owed if debt in new]  # earlier ones stay as kept
    done.settled += earlier.settled
    return done


def _pushing_to(target: RegistryClient, config: Config) -> Push:
    """How records are pushed into `target`: with oras-py, trusting what mirror trusts."""
    settings = config.registry(target.endpoint.host)
    pusher = ArtifactPusher(target, verify=str(settings.ca_bundle) if settings.ca_bundle else True)

    def push(
        repository: str, subject: Descriptor, content: bytes, annotations: Mapping[str, str]
    ) -> Manifest:
        return pusher.push(repository, subject, ARTIFACT_TYPE, content, annotations)

    return push

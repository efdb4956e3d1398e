"""One sync run: observe both sides, plan, fetch manifests, survey referrers, copy, lock.

    observe  list source tags per repository, let the selector choose, then ask
             each side what a chosen tag points at: a HEAD on each side for tags the
             target has, one GET by tag on the source for tags it does not (their
             manifest is needed anyway)
    plan     `plan.plan_tags` decides per tag, `plan.plan_content` lists the content
    fetch    GET the remaining manifests of the tags to write (each digest once)
    referrers  which signatures, SBOMs and attestations of those manifests to bring
             along (`referrers.survey`), planned after their subjects
    copy     `copy.Copier` applies the content plan
    lock     on ACR, the specific tags are locked (`plan.plan_locks`, `locks`)

Each phase is a module of this package (`observe`, `plan`, `fetch`, `referrers`,
`copy`, `locks`); this one runs them in order. The provenance records a run attaches
afterwards are `provenance`'s, started by `run`.

A sync with nothing to do therefore costs one tag listing per repository, one HEAD
per chosen tag on each side, and one request per mirrored manifest that has referrers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mirror.engine.copy import Copier, CopyReporter, CopyResult
from mirror.engine.fetch import fetch_manifests
from mirror.engine.locks import LockResult, apply_locks, lock_states
from mirror.engine.observe import observe
from mirror.engine.plan import ContentPlan, LockStep, TagStep, plan_content, plan_locks
from mirror.engine.pool import LOOKUPS
from mirror.engine.provenance import Attached
from mirror.engine.referrers import (
    RETRY,
    Memory,
    SubjectState,
    Survey,
    subjects_of,
    subjects_of_unknown,
    survey,
)
from mirror.governance.decide import Action, Governance
from mirror.governance.scope import EVERYTHING, Scope
from mirror.governance.selection import Selector, select_all
from mirror.manifest import Manifest
from mirror.transport.acr.metadata import AcrMetadata
from mirror.transport.store import Store


@dataclass
class SyncOutcome:
    """What a run decided (`steps`), planned (`content`, `locks`) and did."""

    steps: list[TagStep]
    content: ContentPlan
    result: CopyResult
    locks: list[LockStep] = field(default_factory=list)
    locking: LockResult = field(default_factory=LockResult)
    interrupted: bool = False
    unlisted: list[tuple[str, str]] = field(default_factory=list)  # repositories not listed
    survey: Survey = field(default_factory=Survey)
    provenance: Attached = field(default_factory=Attached)

    def referrer_states(self) -> list[SubjectState]:
        """What to remember of each subject surveyed: a subject some of whose referrers
        were not copied is remembered as to be asked again."""
        copied = {(r.repository, r.digest) for r in self.result.referrers}
        unfinished = {
            (c.repository, c.subject)
            for c in self.content.referrers
            if (c.repository, c.digest) not in copied
        }
        return [
            replace(state, fingerprint=RETRY)
            if (state.repository, state.subject) in unfinished
            else state
            for state in self.survey.states
        ]

    @property
    def locked(self) -> list[tuple[str, str]]:
        return self.locking.locked

    @property
    def failures(self) -> list[tuple[str, str]]:
        """Every step that failed, listing, copying or locking: (what, why)."""
        return (
            self.unlisted + self.result.failures + self.locking.failures + self.provenance.failures
        )

    @property
    def up_to_date(self) -> int:
        """Tags upstream has that the target already holds as they are (skipped)."""
        return sum(1 for s in self.steps if s.action is Action.SKIP and s.source_digest)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.result.not_attempted

    def failure_summary(self) -> list[tuple[str, int, str]]:
        """The failures grouped by what went wrong: (why, how many, the first what),
        so that a registry that stopped answering is one line, not one per blob."""
        grouped: dict[str, list[str]] = {}
        for what, why in self.failures:
            grouped.setdefault(why, []).append(what)
        return [(why, len(whats), whats[0]) for why, whats in grouped.items()]

    @property
    def drift(self) -> bool:
        return any(step.drift for step in self.steps)


@dataclass
class Preparation:
    """What a run would do, before it writes anything: the repositories it looks at (the
    scope's), the decision per tag (`steps`), the content to copy (`content`, referrers
    included), the referrers survey, and what could not be looked at (`unlisted`: a
    repository not listed, a manifest unfit)."""

    repositories: Sequence[str]
    steps: list[TagStep]
    content: ContentPlan
    survey: Survey
    unlisted: list[tuple[str, str]]


def prepare(
    source: Store,
    target: Store,
    repositories: Sequence[str],
    *,
    select: Selector = select_all,
    governance: Governance | None = None,
    concurrency: int = 8,
    scope: Scope = EVERYTHING,
    memory: Memory | None = None,
) -> Preparation:
    """Observe, plan, fetch the manifests to write and survey their referrers: all of
    a run but the writing (`mirror plan` stops here)."""
    repositories = scope.repositories_of(repositories)
    lookups = max(concurrency, LOOKUPS)
    observation = observe(source, target, repositories, select, concurrency=lookups, scope=scope)
    steps = observation.steps(governance)
    fetched = fetch_manifests(source, steps, concurrency=lookups, known=observation.fetched)
    unfit = {(s.repository, s.tag): why for s in steps if s.pending and (why := fetched.unfit(s))}
    looked = observation.failures + [(f"tag {r}:{t}", why) for (r, t), why in unfit.items()]
    writable = [s for s in steps if (s.repository, s.tag) not in unfit]
    found = survey_referrers(
        source,
        target,
        writable,
        fetched.manifests,
        observation.present(),
        memory,
        governance or Governance(),
        lookups,
    )
    looked += found.failures
    manifests = {**fetched.manifests, **found.manifests}
    content = plan_content(writable, manifests, observation.present(), found.copies)
    return Preparation(repositories, steps, content, found, looked)


def sync(
    source: Store,
    target: Store,
    repositories: Sequence[str],
    reporter: CopyReporter,
    *,
    select: Selector = select_all,
    governance: Governance | None = None,
    concurrency: int = 8,
    metadata: AcrMetadata | None = None,
    scope: Scope = EVERYTHING,
    stop: threading.Event | None = None,
    memory: Memory | None = None,
) -> SyncOutcome:
    """Prepare (`prepare`), copy; then, on ACR (`metadata`), lock the specific tags.

    `memory` is what the ledger remembers of referrers (see `referrers`): with it, the
    referrers of tags already up to date cost one request per subject that has any.
    `scope` narrows the run to the tags a change touched. Setting `stop` ends the run at
    the next safe point: no transfer or push starts after it, a blob being streamed is
    abandoned (it never completes in the target), and the tags already written stay.
    """
    stop = stop or threading.Event()
    prepared = prepare(
        source,
        target,
        repositories,
        select=select,
        governance=governance,
        concurrency=concurrency,
        scope=scope,
        memory=memory,
    )
    copier = Copier(source, target, reporter, concurrency=concurrency, stop=stop)
    outcome = SyncOutcome(
        prepared.steps,
        prepared.content,
        copier.apply(prepared.content),
        unlisted=prepared.unlisted,
        survey=prepared.survey,
    )
    outcome.interrupted = stop.is_set()
    if metadata is not None and not outcome.interrupted:
        states = lock_states(metadata, prepared.repositories, concurrency)
        outcome.locks = plan_locks(outcome.steps, states)
        written = {(write.repository, write.tag) for write in outcome.result.tags}
        outcome.locking = apply_locks(target, metadata, outcome.locks, written, concurrency)
    return outcome


def survey_referrers(
    source: Store,
    target: Store,
    steps: Sequence[TagStep],
    manifests: Mapping[tuple[str, str], Manifest],
    present: Iterable[tuple[str, str]],
    memory: Memory | None,
    governance: Governance,
    concurrency: int,
) -> Survey:
    """The referrers phase: which referrers of the run's subjects to bring along."""
    subjects, unknown = subjects_of(steps, manifests, present, memory, governance)
    more, failures = subjects_of_unknown(source, unknown, concurrency=concurrency)
    found = survey(source, target, [*subjects, *more], governance, concurrency=concurrency)
    found.failures += failures
    return found

"""One sync run: observe both sides, plan, fetch manifests, copy, lock.

    observe  list source tags per repository, let the selector choose, then ask
             each side what a chosen tag points at: a HEAD on each side for tags the
             target has, one GET by tag on the source for tags it does not (their
             manifest is needed anyway)
    plan     `plan.plan_tags` decides per tag, `plan.plan_content` lists the content
    fetch    GET the remaining manifests of the tags to write (each digest once)
    copy     `copy.Copier` applies the content plan
    lock     on ACR, the specific tags are locked (`plan.plan_locks`)

A sync with nothing to do therefore costs one tag listing per repository and one
HEAD per chosen tag on each side.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from mirror.copy import Copier, CopyReporter, CopyResult
from mirror.errors import MirrorError, NotFound
from mirror.governance import Action, Selector, Verdict, rebuilt_from
from mirror.manifest import Manifest
from mirror.plan import (
    ContentPlan,
    Governance,
    LockStep,
    Observed,
    TagStep,
    plan_content,
    plan_locks,
    plan_tags,
)
from mirror.transport.acr import AcrMetadata
from mirror.transport.store import Store
from mirror.versions import parse_tag

T = TypeVar("T")
R = TypeVar("R")
LOOKUPS = 16  # at least this many HEADs and manifest GETs in flight: they are cheap


def select_all(repository: str, tags: Sequence[str]) -> list[Verdict]:
    """`--all-tags`: every tag (still classified, so protections apply)."""
    return [Verdict.of(parse_tag(tag), True, "select: --all-tags") for tag in tags]


@dataclass
class Observation:
    """What `observe` found: per-tag states, the tags the selector skipped, the
    target's earlier derived tags (`1.5.3-rebuild-20260901`) with their digests, and
    the source manifests already fetched (of tags the target does not have)."""

    observed: list[Observed] = field(default_factory=list)
    skipped: list[TagStep] = field(default_factory=list)
    derived: dict[str, dict[str, str]] = field(default_factory=dict)
    fetched: dict[tuple[str, str], Manifest] = field(default_factory=dict)

    def steps(self, governance: Governance | None = None) -> list[TagStep]:
        """The plan for every tag: decisions for the observed, the skipped as they are."""
        decided = plan_tags(self.observed, governance, self.derived)
        return decided + sorted(self.skipped, key=lambda s: (s.repository, s.tag))

    def present(self) -> set[tuple[str, str]]:
        """(repository, digest) of the manifests target tags already point at."""
        present = {(o.repository, o.target.digest) for o in self.observed if o.target}
        present |= {(r, d) for r, tags in self.derived.items() for d in tags.values()}
        return present


@dataclass
class SyncOutcome:
    steps: list[TagStep]
    content: ContentPlan
    result: CopyResult
    locks: list[LockStep] = field(default_factory=list)
    locked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def drift(self) -> bool:
        return any(step.drift for step in self.steps)


def map_limited(limit: int, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`function` over `items` on at most `limit` threads, results in order.

    The threads are kept for the next call (each keeps its registry connections, see
    `PerThread`); `function` must not itself call `map_limited`.
    """
    work = list(items)
    if len(work) <= 1:
        return [function(item) for item in work]
    return list(_lookup_pool(limit).map(function, work))


@functools.cache
def _lookup_pool(limit: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(limit, thread_name_prefix="lookup")


def observe(
    source: Store,
    target: Store,
    repositories: Sequence[str],
    select: Selector,
    *,
    concurrency: int = 8,
) -> Observation:
    """Tag listings, selection, and what each selected tag points at on each side."""
    found = Observation()
    source_tags, target_listed = _listings(source, target, repositories, concurrency)
    wanted: list[tuple[str, str]] = []
    for repo in repositories:
        for verdict in select(repo, source_tags[repo]):
            if verdict.selected:
                wanted.append((repo, verdict.tag))
            else:
                skip = TagStep(repo, verdict.tag, Action.SKIP, verdict.reason, kind=verdict.kind)
                found.skipped.append(skip)

    in_target = {(repo, tag) for repo, tags in target_listed.items() for tag in tags}

    def look(job: tuple[str, str]) -> tuple[Observed, Manifest | None]:
        """One HEAD on each side; a tag new to the target is fetched from the source
        at once instead (one GET: its manifest is needed anyway)."""
        repo, tag = job
        if job in in_target:
            return Observed(repo, tag, source.resolve(repo, tag), target.resolve(repo, tag)), None
        manifest = _manifest_or_none(source, repo, tag)
        descriptor = manifest.descriptor() if manifest is not None else None
        return Observed(repo, tag, descriptor, None), manifest

    for observed, manifest in map_limited(concurrency, look, wanted):
        found.observed.append(observed)
        if manifest is not None:
            found.fetched[(observed.repository, manifest.digest)] = manifest
    found.derived = _derived_tags(target, target_listed, set(wanted), concurrency)
    return found


def _listings(
    source: Store, target: Store, repositories: Sequence[str], concurrency: int
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Tag lists of every repository on both sides, fetched together. A repository
    missing from the source is an error; missing from the target, it is empty."""

    def listing(job: tuple[bool, str]) -> list[str]:
        from_source, repo = job
        return source.list_tags(repo) if from_source else _tags_or_none(target, repo)

    jobs = [(True, repo) for repo in repositories] + [(False, repo) for repo in repositories]
    lists = map_limited(concurrency, listing, jobs)
    count = len(repositories)
    return (
        dict(zip(repositories, lists[:count], strict=True)),
        dict(zip(repositories, lists[count:], strict=True)),
    )


def _derived_tags(
    target: Store, listed: dict[str, list[str]], wanted: set[tuple[str, str]], concurrency: int
) -> dict[str, dict[str, str]]:
    """Digests of the target's derived tags whose original tag is selected."""
    derived = [
        (repo, tag)
        for repo, tags in listed.items()
        for tag in tags
        if (origin := rebuilt_from(tag)) is not None and (repo, origin[0]) in wanted
    ]
    resolved = map_limited(concurrency, lambda job: target.resolve(*job), derived)
    found: dict[str, dict[str, str]] = {}
    for (repo, tag), descriptor in zip(derived, resolved, strict=True):
        if descriptor is not None:
            found.setdefault(repo, {})[tag] = descriptor.digest
    return found


def _manifest_or_none(store: Store, repository: str, tag: str) -> Manifest | None:
    try:
        return store.get_manifest(repository, tag)
    except NotFound:  # deleted since the tag listing
        return None


def _tags_or_none(store: Store, repository: str) -> list[str]:
    try:
        return store.list_tags(repository)
    except NotFound:
        return []


def fetch_manifests(
    source: Store,
    steps: Sequence[TagStep],
    *,
    concurrency: int = 8,
    known: Mapping[tuple[str, str], Manifest] | None = None,
) -> dict[tuple[str, str], Manifest]:
    """Every manifest the pending steps need (indexes, then their children), verified;
    those in `known` (already fetched) are not fetched again."""
    manifests: dict[tuple[str, str], Manifest] = dict(known or {})
    wanted = {(s.repository, s.source_digest) for s in steps if s.pending and s.source_digest}
    for repo, digest in list(wanted):
        if (repo, digest) in manifests:
            wanted |= {(repo, child.digest) for child in manifests[(repo, digest)].children()}
    wanted -= manifests.keys()
    while wanted:
        keys = sorted(wanted)
        fetched = map_limited(concurrency, lambda key: source.get_manifest(*key, key[1]), keys)
        wanted = set()
        for (repo, _), manifest in zip(keys, fetched, strict=True):
            manifests[(repo, manifest.digest)] = manifest
            wanted |= {(repo, child.digest) for child in manifest.children()}
        wanted -= manifests.keys()
    return manifests


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
) -> SyncOutcome:
    """Observe, plan, copy; then, on ACR (`metadata`), lock the specific tags."""
    lookups = max(concurrency, LOOKUPS)
    observation = observe(source, target, repositories, select, concurrency=lookups)
    steps = observation.steps(governance)
    manifests = fetch_manifests(source, steps, concurrency=lookups, known=observation.fetched)
    content = plan_content(steps, manifests, observation.present())
    result = Copier(source, target, reporter, concurrency=concurrency).apply(content)
    outcome = SyncOutcome(steps, content, result)
    if metadata is not None:
        outcome.locks = plan_locks(steps, lock_states(metadata, repositories, concurrency))
        written = {(write.repository, write.tag) for write in result.tags}
        outcome.locked = apply_locks(target, metadata, outcome.locks, written, result, concurrency)
    return outcome


def lock_states(
    metadata: AcrMetadata, repositories: Sequence[str], concurrency: int = 8
) -> dict[str, dict[str, bool]]:
    """repository -> tag -> locked, one listing per repository."""
    listed = map_limited(concurrency, metadata.tag_states, repositories)
    return {
        repo: {tag: attributes.locked for tag, attributes in states.items()}
        for repo, states in zip(repositories, listed, strict=True)
    }


def apply_locks(
    target: Store,
    metadata: AcrMetadata,
    locks: Sequence[LockStep],
    written: set[tuple[str, str]],
    result: CopyResult,
    concurrency: int = 8,
) -> list[tuple[str, str]]:
    """Lock each planned tag that is in the target (children, index, then the tag).

    A tag the sync should have written but did not (it failed) is left alone; a lock
    that fails is added to `result.failures`.
    """
    due = [lock for lock in locks if not lock.after_write or (lock.repository, lock.tag) in written]

    def lock_one(lock: LockStep) -> tuple[str, str] | None:
        try:
            index = target.get_manifest(lock.repository, lock.tag)
            digests = [child.digest for child in index.children()] + [index.digest]
            metadata.lock(lock.repository, lock.tag, digests)
        except MirrorError as error:
            result.failures.append((f"lock {lock.repository}:{lock.tag}", str(error)))
            return None
        return (lock.repository, lock.tag)

    return [done for done in map_limited(concurrency, lock_one, due) if done is not None]

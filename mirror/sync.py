"""One sync run: observe both sides, plan, fetch manifests, copy.

    observe  list source tags per repository, let the selector choose, then HEAD
             each chosen tag in the source and (if listed there) in the target
    plan     `plan.plan_tags` decides per tag, `plan.plan_content` lists the content
    fetch    GET the manifests of the tags to write (each digest once), verified
    copy     `copy.Copier` applies the content plan

A sync with nothing to do therefore costs one tag listing per repository and one
HEAD per chosen tag on each side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from mirror.copy import Copier, CopyReporter, CopyResult
from mirror.errors import NotFound
from mirror.manifest import Manifest
from mirror.plan import ContentPlan, Governance, Observed, TagStep, plan_content, plan_tags
from mirror.policy import Action, Verdict, rebuilt_from
from mirror.transport.store import Store
from mirror.versions import parse_tag

T = TypeVar("T")
Selector = Callable[[str, Sequence[str]], Sequence[Verdict]]


def select_all(repository: str, tags: Sequence[str]) -> list[Verdict]:
    """`--all-tags`: every tag (still classified, so protections apply)."""
    return [Verdict.of(parse_tag(tag), True, "select: --all-tags") for tag in tags]


@dataclass
class Observation:
    """What `observe` found: per-tag states, the tags the selector skipped, and the
    target's earlier derived tags (`1.5.3-rebuild-20260901`) with their digests."""

    observed: list[Observed] = field(default_factory=list)
    skipped: list[TagStep] = field(default_factory=list)
    derived: dict[str, dict[str, str]] = field(default_factory=dict)

    def steps(self, governance: Governance | None = None) -> list[TagStep]:
        """The plan for every tag: decisions for the observed, the skipped as they are."""
        decided = plan_tags(self.observed, governance, self.derived)
        return decided + sorted(self.skipped, key=lambda s: (s.repository, s.tag))


@dataclass
class SyncOutcome:
    steps: list[TagStep]
    content: ContentPlan
    result: CopyResult

    @property
    def ok(self) -> bool:
        return self.result.ok


async def gather_limited(limit: int, jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Await `jobs` with at most `limit` running at once, results in order."""
    slots = asyncio.Semaphore(limit)

    async def run(job: Awaitable[T]) -> T:
        async with slots:
            return await job

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def observe(
    source: Store,
    target: Store,
    repositories: Sequence[str],
    select: Selector,
    *,
    concurrency: int = 16,
) -> Observation:
    """Tag listings, selection and one HEAD per selected tag on each side."""
    found = Observation()
    source_listings, target_listings = await asyncio.gather(
        asyncio.gather(*(source.list_tags(repo) for repo in repositories)),
        asyncio.gather(*(_tags_or_none(target, repo) for repo in repositories)),
    )
    source_tags = dict(zip(repositories, source_listings, strict=True))
    target_listed = dict(zip(repositories, target_listings, strict=True))
    wanted: list[tuple[str, Verdict]] = []
    for repo in repositories:
        for verdict in select(repo, source_tags[repo]):
            if verdict.selected:
                wanted.append((repo, verdict))
            else:
                skip = TagStep(repo, verdict.tag, Action.SKIP, verdict.reason, kind=verdict.kind)
                found.skipped.append(skip)

    async def look(repo: str, tag: str) -> Observed:
        in_target = tag in target_listed[repo]
        source_side, target_side = await asyncio.gather(
            source.resolve(repo, tag),
            target.resolve(repo, tag) if in_target else _none(),
        )
        return Observed(repo, tag, source_side, target_side)

    found.observed = await gather_limited(concurrency, (look(r, v.tag) for r, v in wanted))
    derived = [
        (repo, tag)
        for repo in repositories
        for tag in sorted(target_listed[repo])
        if (origin := rebuilt_from(tag)) is not None
        and any(r == repo and v.tag == origin[0] for r, v in wanted)
    ]
    resolved = await gather_limited(concurrency, (target.resolve(r, t) for r, t in derived))
    for (repo, tag), descriptor in zip(derived, resolved, strict=True):
        if descriptor is not None:
            found.derived.setdefault(repo, {})[tag] = descriptor.digest
    return found


async def _tags_or_none(store: Store, repository: str) -> set[str]:
    try:
        return set(await store.list_tags(repository))
    except NotFound:
        return set()


async def _none() -> None:
    return None


async def fetch_manifests(
    source: Store, steps: Sequence[TagStep], *, concurrency: int = 16
) -> dict[tuple[str, str], Manifest]:
    """Every manifest the pending steps need (indexes, then their children), verified."""
    manifests: dict[tuple[str, str], Manifest] = {}
    wanted = {(s.repository, s.source_digest) for s in steps if s.pending and s.source_digest}
    while wanted:
        keys = sorted(k for k in wanted if k not in manifests)
        fetched = await gather_limited(
            concurrency, (source.get_manifest(repo, digest, digest) for repo, digest in keys)
        )
        wanted = set()
        for (repo, _), manifest in zip(keys, fetched, strict=True):
            manifests[(repo, manifest.digest)] = manifest
            wanted |= {(repo, child.digest) for child in manifest.children()}
        wanted -= manifests.keys()
    return manifests


def present_in_target(observation: Observation) -> set[tuple[str, str]]:
    """(repository, digest) of the manifests target tags already point at."""
    present = {(o.repository, o.target.digest) for o in observation.observed if o.target}
    present |= {(r, d) for r, tags in observation.derived.items() for d in tags.values()}
    return present


async def sync(
    source: Store,
    target: Store,
    repositories: Sequence[str],
    reporter: CopyReporter,
    *,
    select: Selector = select_all,
    governance: Governance | None = None,
    concurrency: int = 8,
) -> SyncOutcome:
    observation = await observe(source, target, repositories, select)
    steps = observation.steps(governance)
    manifests = await fetch_manifests(source, steps)
    content = plan_content(steps, manifests, present_in_target(observation))
    copier = Copier(source, target, reporter, concurrency=concurrency)
    result = await copier.apply(content)
    return SyncOutcome(steps, content, result)

"""The first phase of a run: what each selected tag points at, on each side.

List the source's tags per repository, let the selector choose, then ask each side
what a chosen tag points at: a HEAD on each side for tags the target has, one GET by
tag on the source for tags it does not (their manifest is needed anyway). The target's
derived tags (`1.5.3-rebuild-20260901`) are resolved too, so a rebuild is mirrored
under a derived tag only once. A digest the selector chose (a deployment pins an image
by digest) is looked at like a tag the target has: a HEAD on each side. A `Scope`
narrows the selection to the tags a change touched (a release, a rolling tag that
moved): only those cost requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mirror.digest import is_digest
from mirror.engine.plan import Observed, TagStep, in_version_order, plan_tags
from mirror.engine.pool import map_limited
from mirror.errors import DigestMismatch, ManifestError, MirrorError, NotFound
from mirror.governance.decide import Action, Governance, rebuilt_from
from mirror.governance.scope import EVERYTHING, Scope
from mirror.governance.selection import Selector
from mirror.manifest import Manifest
from mirror.transport.store import Store, tags_or_empty


@dataclass
class Observation:
    """What `observe` found: per-tag states, the tags the selector skipped, the
    target's earlier derived tags (`1.5.3-rebuild-20260901`) with their digests, and
    the source manifests already fetched (of tags the target does not have)."""

    observed: list[Observed] = field(default_factory=list)
    skipped: list[TagStep] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # repositories not listed
    derived: dict[str, dict[str, str]] = field(default_factory=dict)
    fetched: dict[tuple[str, str], Manifest] = field(default_factory=dict)

    def steps(self, governance: Governance | None = None) -> list[TagStep]:
        """The plan for every tag, decided or skipped, per repository in IoT Edge
        version order (lines, then versions, then the rolling tag)."""
        decided = plan_tags(self.observed, governance, self.derived)
        return in_version_order([*decided, *self.skipped])

    def present(self) -> set[tuple[str, str]]:
        """(repository, digest) of the manifests target tags already point at."""
        present = {(o.repository, o.target.digest) for o in self.observed if o.target}
        present |= {(r, d) for r, tags in self.derived.items() for d in tags.values()}
        return present


def observe(
    source: Store,
    target: Store,
    repositories: Sequence[str],
    select: Selector,
    *,
    concurrency: int = 8,
    scope: Scope = EVERYTHING,
) -> Observation:
    """Tag listings, selection (narrowed to `scope`), and what each selected tag points
    at on each side."""
    found = Observation()
    source_tags, target_listed, errors = _listings(source, target, repositories, concurrency)
    if errors and len(errors) == len(repositories):
        raise errors[0][1]  # nothing to go on: the run fails with the first reason
    found.failures = [(f"the tags of {repo}", str(error)) for repo, error in errors]
    wanted: list[tuple[str, str]] = []
    for repo in source_tags:
        verdicts = select(repo, source_tags[repo])
        chosen = set(scope.narrow(v.tag for v in verdicts if v.selected))
        for verdict in verdicts:
            if verdict.tag in chosen:
                wanted.append((repo, verdict.tag))
            elif not verdict.selected and scope.covers(verdict.parsed):
                skip = TagStep(repo, verdict.tag, Action.SKIP, verdict.reason, kind=verdict.kind)
                found.skipped.append(skip)

    in_target = {(repo, tag) for repo, tags in target_listed.items() for tag in tags}

    def look(job: tuple[str, str]) -> tuple[Observed, Manifest | None] | ContentError:
        """One HEAD on each side; a tag new to the target is fetched from the source
        at once instead (one GET: its manifest is needed anyway). A manifest that does
        not verify fails its tag only."""
        repo, tag = job
        if job in in_target or is_digest(tag):  # a digest a deployment names: in no listing
            return Observed(repo, tag, source.resolve(repo, tag), target.resolve(repo, tag)), None
        try:
            manifest = _manifest_or_none(source, repo, tag)
        except CONTENT_ERRORS as error:
            return error
        descriptor = manifest.descriptor() if manifest is not None else None
        return Observed(repo, tag, descriptor, None), manifest

    for job, looked in zip(wanted, map_limited(concurrency, look, wanted), strict=True):
        if not isinstance(looked, tuple):
            found.failures.append((f"tag {job[0]}:{job[1]}", str(looked)))
            continue
        observed, manifest = looked
        found.observed.append(observed)
        if manifest is not None:
            found.fetched[(observed.repository, manifest.digest)] = manifest
    found.derived = _derived_tags(target, target_listed, set(wanted), concurrency)
    return found


# A manifest that does not parse or verify: a failure of the tags that need it, not of
# the run (unlike a registry that cannot be reached).
CONTENT_ERRORS = (ManifestError, DigestMismatch)
ContentError = ManifestError | DigestMismatch

Listed = tuple[dict[str, list[str]], dict[str, list[str]], list[tuple[str, MirrorError]]]


def _listings(
    source: Store, target: Store, repositories: Sequence[str], concurrency: int
) -> Listed:
    """Tag lists of every repository on both sides, fetched together. A repository the
    source cannot list (missing, refused) is left out, with its error, so that the
    others are still mirrored; missing from the target, a repository is empty."""

    def listing(job: tuple[bool, str]) -> list[str] | MirrorError:
        from_source, repo = job
        try:
            return source.list_tags(repo) if from_source else tags_or_empty(target, repo)
        except MirrorError as error:
            return error

    jobs = [(True, repo) for repo in repositories] + [(False, repo) for repo in repositories]
    lists = map_limited(concurrency, listing, jobs)
    count = len(repositories)
    sources: dict[str, list[str]] = {}
    targets: dict[str, list[str]] = {}
    errors: list[tuple[str, MirrorError]] = []
    for repo, upstream, mirrored in zip(repositories, lists[:count], lists[count:], strict=True):
        if isinstance(upstream, MirrorError):
            errors.append((repo, upstream))
        elif isinstance(mirrored, MirrorError):
            errors.append((repo, mirrored))
        else:
            sources[repo], targets[repo] = upstream, mirrored
    return sources, targets, errors


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

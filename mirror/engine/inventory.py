"""What the mirror holds, per repository: `mirror tags list`.

From the ledger: every tag mirror wrote or holds back, with its kind, digest and when
it was mirrored. With `live`, the registry is asked as well: its own tag listing (a tag
the ledger has no record of shows up as `unrecorded`), what each tag points at now
(a tag moved behind mirror's back shows the live digest, marked `moved`), the
platforms of each index, and, on ACR, whether the tag is locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from mirror.engine.locks import lock_states
from mirror.engine.pool import map_limited
from mirror.errors import NotFound
from mirror.governance.decide import rebuilt_from
from mirror.governance.versions import parse_tag
from mirror.transport.acr.metadata import AcrMetadata
from mirror.transport.store import Store, tags_or_empty

if TYPE_CHECKING:
    from mirror.ledger import Ledger


@dataclass(frozen=True, slots=True)
class Held:
    """One tag of the mirror."""

    repository: str
    tag: str
    kind: str
    state: str  # mirrored, held, pending; with `live` also unrecorded, moved, missing
    digest: str | None
    mirrored: datetime | None
    platforms: tuple[str, ...] | None = None  # with `live`
    locked: bool | None = None  # with `live`, on ACR


def kind_of(tag: str, recorded: str | None = None) -> str:
    """`specific`, `rolling`, `derived` (`1.5.3-rebuild-20260901`, a rebuild kept
    apart) or `other`."""
    if rebuilt_from(tag) is not None:
        return "derived"
    return recorded or parse_tag(tag).kind.value


def from_ledger(ledger: Ledger, target: str, repositories: Sequence[str]) -> list[Held]:
    """The tags the ledger records as mirrored, held or pending, in version order."""
    return [
        Held(
            repository,
            state.tag,
            kind_of(state.tag, state.kind),
            state.state,
            state.digest,
            state.mirrored,
        )
        for repository in repositories
        for state in ledger.tag_states(repository, target=target)
        if state.state != "skipped"
    ]


def with_registry(
    recorded: Sequence[Held],
    store: Store,
    repositories: Sequence[str],
    metadata: AcrMetadata | None,
    *,
    concurrency: int = 8,
) -> list[Held]:
    """`recorded` checked against the registry itself (see the module docstring)."""
    listed = map_limited(concurrency, lambda repo: tags_or_empty(store, repo), repositories)
    locks = lock_states(metadata, repositories, concurrency) if metadata else {}
    known = {(h.repository, h.tag): h for h in recorded}
    entries = list(recorded)
    for repository, tags in zip(repositories, listed, strict=True):
        entries += [
            Held(repository, tag, kind_of(tag), "unrecorded", None, None)
            for tag in tags
            if (repository, tag) not in known
        ]
    there = {(repo, tag) for repo, tags in zip(repositories, listed, strict=True) for tag in tags}
    looked = map_limited(concurrency, lambda held: _look(store, held, there), entries)
    return sorted(
        (
            replace(held, locked=locks.get(held.repository, {}).get(held.tag)) if locks else held
            for held in looked
        ),
        key=lambda held: (held.repository, parse_tag(held.tag).sort_key),
    )


def _look(store: Store, held: Held, there: set[tuple[str, str]]) -> Held:
    """`held` as the registry has it: its digest, its platforms."""
    if (held.repository, held.tag) not in there:
        return replace(held, state="missing", platforms=())
    try:
        manifest = store.get_manifest(held.repository, held.tag)
    except NotFound:  # deleted between the listing and this look
        return replace(held, state="missing", platforms=())
    platforms = tuple(
        str(child.platform)
        for child in manifest.children()
        if child.platform is not None and not child.is_attestation
    )
    state = held.state
    if held.digest is not None and manifest.digest != held.digest:
        state = "moved"
    return replace(held, digest=manifest.digest, state=state, platforms=platforms)

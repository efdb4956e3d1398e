"""Where `--pin specific|digest` learns what a tag means now: the target registry, or
the ledger of earlier syncs (`--offline`).

- `RegistryLookup` asks the target (through a `Store` handed in by the caller, opened
  on the target's host with no repository prefix): the index digest a tag has there,
  and the specific tag of the same line (`1.5` -> `1.5.3`) with the same digest, tried
  newest first (`specific_candidates`).
- `LedgerLookup` answers from what earlier syncs recorded, with no registry at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mirror.deployment.resolvers import Target
from mirror.errors import NotFound
from mirror.governance.versions import TagKind, Version, parse_tag
from mirror.ledger import Ledger
from mirror.manifest import Descriptor
from mirror.reference import ImageReference

if TYPE_CHECKING:
    from mirror.transport.store import Store


@dataclass
class RegistryLookup:
    """`VersionLookup` answered by the target registry (what `mirror sync` put there).

    Answers are cached for the lifetime of the object, so that many manifests naming
    the same image cost one round of requests.
    """

    store: Store
    target: Target
    _resolved: dict[tuple[str, str], Descriptor | None] = field(default_factory=dict)
    _tags: dict[str, list[str]] = field(default_factory=dict)

    def index_digest(self, source: ImageReference) -> str | None:
        """The digest `source`'s tag (or digest) resolves to in the target."""
        found = self._resolve(self._repository(source), source.reference)
        return found.digest if found else None

    def specific_tag(self, source: ImageReference) -> str | None:
        """The newest specific tag in the target with the digest the rolling tag has there."""
        if source.tag is None:
            return None
        repository = self._repository(source)
        rolling = self._resolve(repository, source.tag)
        if rolling is None:
            return None
        for tag in specific_candidates(source.tag, self._list(repository)):
            found = self._resolve(repository, tag)
            if found is not None and found.digest == rolling.digest:
                return tag
        return None

    def _repository(self, source: ImageReference) -> str:
        return self.target.repository_for(source.repository)

    def _resolve(self, repository: str, reference: str) -> Descriptor | None:
        key = (repository, reference)
        if key not in self._resolved:
            self._resolved[key] = self.store.resolve(repository, reference)
        return self._resolved[key]

    def _list(self, repository: str) -> list[str]:
        if repository not in self._tags:
            try:
                self._tags[repository] = self.store.list_tags(repository)
            except NotFound:
                self._tags[repository] = []
        return self._tags[repository]


def specific_candidates(rolling: str, tags: Iterable[str]) -> list[str]:
    """The specific version tags that `rolling` may stand for, newest first.

    For a line tag (`1.5`, `1.5-linux-arm32v7`): the specific versions of that line
    with the same platform suffix. For any other tag (`latest`): every specific
    version tag. Releases sort before release candidates of the same version.
    """
    wanted = parse_tag(rolling)
    if wanted.kind is TagKind.SPECIFIC:
        return []
    found: list[tuple[Version, str]] = []
    for text in tags:
        tag = parse_tag(text)
        if tag.version is None or tag.debug:
            continue
        if wanted.kind is TagKind.ROLLING and (tag.line, tag.arch) != (wanted.line, wanted.arch):
            continue
        found.append((tag.version, text))
    return [text for _, text in sorted(found, reverse=True)]


@dataclass
class LedgerLookup:
    """A `VersionLookup` (see `mirror.deployment.rewrite`) answered from what earlier
    syncs recorded: `mirror rewrite --offline --pin specific|digest` needs no registry.

    `source.repository` is the mirrored repository's name as synced; `target` the
    sync's target (None: any target).
    """

    ledger: Ledger
    target: str | None = None

    def specific_tag(self, source: ImageReference) -> str | None:
        if source.tag is None:
            return None
        return self.ledger.specific_for(source.repository, source.tag, target=self.target)

    def index_digest(self, source: ImageReference) -> str | None:
        if source.digest is not None:
            return source.digest
        if source.tag is None:
            return None
        found = self.ledger.recorded(source.repository, [source.tag], target=self.target)
        record = found.get(source.tag)
        return record.target if record is not None else None

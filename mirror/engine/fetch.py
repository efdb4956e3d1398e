"""Fetching the manifests of the tags a run writes: indexes, then their children.

Each digest is fetched once and verified against the digest that names it; manifests
the observation already fetched (tags new to the target) are not fetched again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mirror.engine.plan import TagStep
from mirror.engine.pool import map_limited
from mirror.errors import DigestMismatch, ManifestError
from mirror.manifest import Manifest
from mirror.transport.store import Store

Key = tuple[str, str]  # (repository, digest)


@dataclass
class Fetched:
    """The manifests fetched, and those that did not verify (with why)."""

    manifests: dict[Key, Manifest] = field(default_factory=dict)
    failed: dict[Key, str] = field(default_factory=dict)

    def unfit(self, step: TagStep) -> str | None:
        """Why `step` cannot be written (a manifest it needs did not verify), or None."""
        assert step.source_digest is not None
        pending = [(step.repository, step.source_digest)]
        while pending:
            key = pending.pop()
            if key not in self.manifests:
                return self.failed.get(key, f"manifest {key[1]} was not fetched")
            pending += [(key[0], child.digest) for child in self.manifests[key].children()]
        return None


def fetch_manifests(
    source: Store,
    steps: Sequence[TagStep],
    *,
    concurrency: int = 8,
    known: Mapping[Key, Manifest] | None = None,
) -> Fetched:
    """Every manifest the pending steps need (indexes, then their children), verified;
    those in `known` (already fetched) are not fetched again. A manifest that does not
    verify is set aside (`failed`), not fetched again, and fails only the tags that
    need it."""
    found = Fetched(dict(known or {}))
    manifests = found.manifests
    wanted = {(s.repository, s.source_digest) for s in steps if s.pending and s.source_digest}
    for repo, digest in list(wanted):
        if (repo, digest) in manifests:
            wanted |= {(repo, child.digest) for child in manifests[(repo, digest)].children()}
    wanted -= manifests.keys()
    while wanted:
        keys = sorted(wanted)
        fetched = map_limited(concurrency, lambda key: _fetch(source, key), keys)
        wanted = set()
        for key, manifest in zip(keys, fetched, strict=True):
            if isinstance(manifest, Manifest):
                manifests[key] = manifest
                wanted |= {(key[0], child.digest) for child in manifest.children()}
            else:
                found.failed[key] = str(manifest)
        wanted -= manifests.keys() | found.failed.keys()
    return found


def _fetch(source: Store, key: Key) -> Manifest | ManifestError | DigestMismatch:
    try:
        return source.get_manifest(*key, key[1])
    except (ManifestError, DigestMismatch) as error:
        return error

"""Fetching the manifests of the tags a run writes: indexes, then their children.

Each digest is fetched once and verified against the digest that names it; manifests
the observation already fetched (tags new to the target) are not fetched again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mirror.engine.plan import TagStep
from mirror.engine.pool import map_limited
from mirror.manifest import Manifest
from mirror.transport.store import Store


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

"""What starts a run, and what it asks the run to look at.

Every trigger carries a `Scope` (a schedule: every tag; a release: its tags and its
line's rolling tag; a rolling tag moved upstream: that tag) and a key that names it
(`schedule:<job>:<fire time>`, `feed:<repository>:<version>`, `github:<delivery>`), under
which the ledger's queue keeps it once: a webhook delivered twice, or a release seen by
two replicas, makes one run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from mirror.governance.scope import EVERYTHING, Scope
from mirror.governance.versions import Line, Version

START = "start"
SCHEDULE = "schedule"
RELEASE_FEED = "release-feed"
GITHUB_RELEASES = "github-releases"
TAG_WATCH = "tag-watch"
GITHUB_WEBHOOK = "github-webhook"
SYNC_WEBHOOK = "sync-webhook"
RELEASES = frozenset({RELEASE_FEED, GITHUB_RELEASES, TAG_WATCH, GITHUB_WEBHOOK})


@dataclass(frozen=True, slots=True)
class Trigger:
    """One reason to run: its kind, its key in the queue, its scope, and when the change
    it stands for was seen (the start of the release-to-mirrored latency)."""

    kind: str
    key: str
    scope: Scope
    detail: str
    seen: datetime


def at_start(now: datetime) -> Trigger:
    return Trigger(START, f"start:{uuid.uuid4()}", EVERYTHING, "the service started", now)


def scheduled(job: str, fire_time: datetime, now: datetime) -> Trigger:
    """A schedule firing: replicas that share the schedule share the key."""
    key = f"schedule:{job}:{fire_time.isoformat()}"
    return Trigger(SCHEDULE, key, EVERYTHING, f"schedule {job}", now)


def release(
    kind: str,
    key: str,
    repositories: frozenset[str] | None,
    version: Version,
    detail: str,
    seen: datetime,
) -> Trigger:
    """A new release: its tags and its line's rolling tag, in `repositories` (None: all)."""
    scope = Scope(repositories=repositories, versions=frozenset({version}))
    return Trigger(kind, key, scope, detail, seen)


def rolling_moved(repository: str, line: Line, digest: str, seen: datetime) -> Trigger:
    scope = Scope(repositories=frozenset({repository}), tags=frozenset({str(line)}))
    key = f"watch:{repository}:{line}:{digest}"
    detail = f"{repository}:{line} moved upstream to {digest[:19]}"
    return Trigger(TAG_WATCH, key, scope, detail, seen)


def requested(scope: Scope, detail: str, seen: datetime) -> Trigger:
    return Trigger(SYNC_WEBHOOK, f"sync:{uuid.uuid4()}", scope, detail, seen)

"""The release feed poller: a new edgeAgent or edgeHub version in a line the policy
mirrors starts a sync of that release.

The feed (`product-versions.json`) is fetched with conditional GETs; most of its changes
are other products (the metrics collector, the API proxy), so the image versions are
compared per repository and line, not the file: only a version new to a repository,
in a line the policy mirrors, triggers. The first answer is the baseline (the start-up
run covers what was already there). The feed also tells the policy which lines are
current, so the selection follows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx

from mirror.errors import MirrorError
from mirror.governance.releases import ReleaseFeed, parse_feed
from mirror.governance.selection import Selector
from mirror.governance.versions import Version
from mirror.logs import get_logger
from mirror.service.polling import Backoff, Conditional
from mirror.service.triggers import RELEASE_FEED, Trigger, release

Known = dict[str, frozenset[Version]]


class FeedWatcher:
    """Polls the feed; submits a trigger per new version worth mirroring."""

    def __init__(
        self,
        url: str,
        client: httpx.Client,
        repositories: Sequence[str],
        selector: Callable[[ReleaseFeed | None], Selector],
        submit: Callable[[Trigger], bool],
        every: float,
    ) -> None:
        self.request = Conditional(url, {"Accept": "application/json"})
        self.client = client
        self.repositories = tuple(repositories)
        self.selector = selector
        self.submit = submit
        self.backoff = Backoff(base=every)
        self.feed: ReleaseFeed | None = None
        self._known: Known | None = None

    def poll(self) -> list[Trigger]:
        """One poll (skipped while backing off); the triggers it submitted."""
        if not self.backoff.due():
            return []
        try:
            body = self.request.get(self.client)
            if body is None:
                self.backoff.succeeded()
                return []
            feed = parse_feed(json.loads(body))
            known = {repo: frozenset(feed.image_versions(repo)) for repo in self.repositories}
        except (httpx.HTTPError, ValueError, MirrorError) as error:
            self.request.etag = self.request.modified = None  # ask again for the whole feed
            self.backoff.failed("feed", f"{self.request.url}: {_say(error)}")
            return []
        self.backoff.succeeded()
        return self._compare(feed, known)

    def _compare(self, feed: ReleaseFeed, known: Known) -> list[Trigger]:
        previous, self._known, self.feed = self._known, known, feed
        if previous is None:
            return []
        select = self.selector(feed)
        triggers = []
        now = datetime.now(UTC)
        for repo, versions in known.items():
            for version in sorted(versions - previous.get(repo, frozenset())):
                (verdict,) = select(repo, [str(version)])
                if not verdict.selected:
                    get_logger().info(
                        "feed.ignored", repository=repo, version=str(version), reason=verdict.reason
                    )
                    continue
                detail = f"{repo} {version} in the release feed"
                key = f"feed:{repo}:{version}"
                trigger = release(RELEASE_FEED, key, frozenset({repo}), version, detail, now)
                if self.submit(trigger):
                    triggers.append(trigger)
        return triggers


def _say(error: Exception) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON ({error.msg})"
    return str(error) or type(error).__name__

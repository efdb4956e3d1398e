"""GitHub releases of the IoT Edge repository: polled through the REST API (off by
default), and read from `release` webhooks (see `hooks`).

Tag names there are irregular: four-part versions (`1.0.9.4`), both spellings of a
release candidate (`1.2.0-rc4`, `1.6.0-rc.1`), product-prefixed tags
(`metrics-collector-1.0.2`) and `v`-prefixed ones. A name is read with the project's tag
grammar; one that is not a specific IoT Edge version (with an optional leading `v`) is
not a runtime release and is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from mirror.governance.selection import Selector
from mirror.governance.versions import TagKind, Version, parse_tag
from mirror.logs import get_logger
from mirror.service.polling import Backoff, Conditional
from mirror.service.triggers import GITHUB_RELEASES, Trigger, release


def release_version(tag_name: str) -> Version | None:
    """The runtime version a release tag names, or None (another product, not a version)."""
    tag = parse_tag(tag_name.removeprefix("v"))
    if tag.kind is not TagKind.SPECIFIC or tag.arch is not None or tag.debug:
        return None
    return tag.version


def wanted(version: Version, repositories: Sequence[str], select: Selector) -> bool:
    """Whether the policy mirrors `version` in any of `repositories` (a release
    candidate only where the policy takes them)."""
    return any(select(repo, [str(version)])[0].selected for repo in repositories)


class GithubPoller:
    """Polls `GET /repos/<owner>/<name>/releases` with an ETag."""

    def __init__(
        self,
        api: str,
        repository: str,
        token: str | None,
        client: httpx.Client,
        repositories: Sequence[str],
        selector: Callable[[], Selector],
        submit: Callable[[Trigger], bool],
        every: float,
    ) -> None:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{api.rstrip('/')}/repos/{repository}/releases?per_page=30"
        self.request = Conditional(url, headers)
        self.repository = repository
        self.client = client
        self.repositories = tuple(repositories)
        self.selector = selector
        self.submit = submit
        self.backoff = Backoff(base=every)
        self._seen: set[str] | None = None

    def poll(self) -> list[Trigger]:
        if not self.backoff.due():
            return []
        try:
            body = self.request.get(self.client)
            releases = None if body is None else _releases(json.loads(body))
        except (httpx.HTTPError, ValueError, TypeError) as error:
            self.backoff.failed("github", f"{self.repository}: {type(error).__name__}: {error}")
            return []
        self.backoff.succeeded()
        return [] if releases is None else self._compare(releases)

    def _compare(self, releases: list[dict[str, Any]]) -> list[Trigger]:
        names = {str(r.get("tag_name")) for r in releases if not r.get("draft")}
        previous, self._seen = self._seen, (self._seen or set()) | names
        if previous is None:
            return []
        select, now, triggers = self.selector(), datetime.now(UTC), []
        for name in sorted(names - previous):
            version = release_version(name)
            if version is None or not wanted(version, self.repositories, select):
                get_logger().info("github.ignored", release=name)
                continue
            detail = f"release {name} of {self.repository}"
            key = f"github-release:{self.repository}:{name}"
            trigger = release(GITHUB_RELEASES, key, None, version, detail, now)
            if self.submit(trigger):
                triggers.append(trigger)
        return triggers


def _releases(data: object) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise TypeError("the releases are not a JSON list")
    return [
        item for item in data if isinstance(item, dict) and isinstance(item.get("tag_name"), str)
    ]

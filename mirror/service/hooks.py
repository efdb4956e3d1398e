"""Where webhooks come in: GitHub `release` events, ACR push/delete events, and a plain
request for a sync.

What each endpoint accepts (a webhook can only trigger the source and repositories
already configured: nothing in a payload chooses where to pull from):

- `POST /hooks/github`: `X-Hub-Signature-256` must be the HMAC-SHA256 of the raw body
  with the shared secret (compared in constant time); `ping` is answered; a `release`
  event that is `published` or `released`, not a draft, from an allow-listed repository,
  naming a runtime version the policy mirrors, queues a sync of that release. Each
  `X-GitHub-Delivery` id acts once (the ledger keeps it with the queued trigger).
- `POST /hooks/acr`: the configured header must hold the shared secret; a push or
  delete of a mirrored repository's tag in the target queues an audit of that tag.
- `POST /hooks/sync`: a bearer token; the body may name `repositories`, `lines`,
  `versions` and `tags` to narrow the sync.

Refusals say no more than their status: 401 (no or wrong credential), 403 (a repository
not allowed), 413 (a body over the limit), 422 (a payload that does not parse).
Accepted requests answer 202 (queued), 200 (nothing to do, or already done).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from mirror.governance.scope import Scope
from mirror.governance.versions import Line, Version
from mirror.reference import validate_repository, validate_tag
from mirror.service.github import release_version
from mirror.service.triggers import GITHUB_WEBHOOK, Trigger, release, requested

ACTIONS = frozenset({"published", "released"})


class Refused(Exception):
    """A webhook refused: the HTTP status, and a word for the log (never for the caller)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Answer:
    """An accepted webhook: the status, and what is said back."""

    status: int
    body: dict[str, Any]


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it goes over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refused(413, "body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, "body too large")
    return bytes(body)


def github_signature(secret: bytes, body: bytes) -> str:
    """`sha256=<hex>`: the HMAC-SHA256 of `body` with `secret`, as GitHub sends it."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_secret(given: str | None, expected: bytes | str) -> None:
    """Compare a credential in constant time; 401 when missing or wrong."""
    want = expected.encode() if isinstance(expected, str) else expected
    if not given or not hmac.compare_digest(given.encode(), want):
        raise Refused(401, "missing or wrong credential")


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(422, "not JSON") from None
    if not isinstance(document, dict):
        raise Refused(422, "not a JSON object")
    return document


@dataclass(frozen=True)
class GithubRelease:
    """What a `release` event asks for, once verified."""

    delivery: str
    repository: str
    action: str
    tag_name: str
    draft: bool
    prerelease: bool


def github_event(
    headers: Mapping[str, str], body: bytes, secret: bytes, allowed: frozenset[str]
) -> GithubRelease | Answer:
    """Verify and read a GitHub webhook: a release to act on, or the answer to give."""
    check_secret(headers.get("x-hub-signature-256"), github_signature(secret, body))
    event, delivery = headers.get("x-github-event", ""), headers.get("x-github-delivery", "")
    if not delivery or not event:
        raise Refused(422, "no event name or delivery id")
    if event == "ping":
        return Answer(200, {"pong": True})
    if event != "release":
        return Answer(200, {"ignored": f"event {event}"})
    document = parse_json(body)
    repository = _text(document.get("repository"), "full_name")
    if repository.lower() not in allowed:
        raise Refused(403, f"repository {repository!r} is not allowed")
    release_data = document.get("release")
    if not isinstance(release_data, dict):
        raise Refused(422, "no release")
    return GithubRelease(
        delivery,
        repository,
        str(document.get("action", "")),
        _text(release_data, "tag_name"),
        release_data.get("draft") is True,
        release_data.get("prerelease") is True,
    )


def release_trigger(
    event: GithubRelease, mirrors: Callable[[Version], bool], now: datetime
) -> Trigger | Answer:
    """The trigger a verified release asks for, or why there is none."""
    if event.action not in ACTIONS:
        return Answer(200, {"ignored": f"action {event.action or 'unnamed'}"})
    if event.draft:
        return Answer(200, {"ignored": "draft"})
    version = release_version(event.tag_name)
    if version is None:
        return Answer(200, {"ignored": f"{event.tag_name} is not a runtime version"})
    if not mirrors(version):
        candidate = event.prerelease or version.prerelease is not None
        what = (
            "a pre-release, not mirrored by the policy"
            if candidate
            else "not mirrored by the policy"
        )
        return Answer(200, {"ignored": f"{version}: {what}"})
    detail = f"GitHub release {event.tag_name} of {event.repository}"
    return release(GITHUB_WEBHOOK, f"github:{event.delivery}", None, version, detail, now)


@dataclass(frozen=True)
class AcrEvent:
    """An ACR push or delete of one tag (the index event; child manifests are skipped)."""

    action: str
    repository: str
    tag: str
    digest: str | None


def acr_event(document: Mapping[str, Any]) -> AcrEvent | Answer:
    action = str(document.get("action", ""))
    target = document.get("target")
    if action not in ("push", "delete") or not isinstance(target, dict):
        return Answer(200, {"ignored": f"action {action or 'unnamed'}"})
    tag = target.get("tag")
    if not isinstance(tag, str) or not tag:
        return Answer(200, {"ignored": "no tag"})
    try:
        repository = validate_repository(_text(target, "repository"))
        validate_tag(tag)
    except ValueError:
        raise Refused(422, "malformed repository or tag") from None
    digest = target.get("digest")
    return AcrEvent(action, repository, tag, digest if isinstance(digest, str) else None)


def sync_request(document: Mapping[str, Any], configured: frozenset[str]) -> Trigger:
    """A `POST /hooks/sync` body as a trigger; only configured repositories."""
    try:
        repositories = _names(document, "repositories")
        lines = _names(document, "lines")
        versions = _names(document, "versions")
        tags = _names(document, "tags")
        scope = Scope(
            repositories,
            frozenset(Version.parse(v) for v in versions) if versions is not None else None,
            frozenset(Line.parse(line) for line in lines) if lines is not None else None,
            frozenset(validate_tag(t) for t in tags) if tags is not None else None,
        )
    except ValueError:
        raise Refused(422, "malformed scope") from None
    if repositories is not None and not repositories <= configured:
        raise Refused(422, "a repository that is not configured")
    return requested(scope, f"sync requested: {scope}", datetime.now(UTC))


def _names(document: Mapping[str, Any], key: str) -> frozenset[str] | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(key)
    return frozenset(value)


def _text(data: object, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise Refused(422, f"no {key}")
    return value

"""Webhooks: GitHub `release` events (signed), ACR events, sync requests, and bodies
refused over the limit before they are read whole."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mirror.engine.job import Job
from mirror.governance.scope import EVERYTHING, Scope
from mirror.governance.versions import Line, Version
from mirror.service.github import wanted
from mirror.service.hooks import (
    AcrEvent,
    Answer,
    GithubRelease,
    Refused,
    acr_event,
    github_event,
    github_signature,
    read_body,
    release_trigger,
    sync_request,
)
from mirror.service.triggers import GITHUB_WEBHOOK, SYNC_WEBHOOK, Trigger
from mirror.settings.config import Config

with warnings.catch_warnings():
    # starlette 1.x asks for `httpx2` and warns when its test client falls back on httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

AGENT, HUB = "azureiotedge-agent", "azureiotedge-hub"
SECRET = b"It's a Secret to Everybody"
ALLOWED = frozenset({"azure/azure-iotedge"})
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
Mirrors = Callable[[Version], bool]


# --- the GitHub signature -------------------------------------------------------------


def test_github_signature_matches_githubs_test_vector() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    assert github_signature(SECRET, b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_github_signature_depends_on_secret_and_body() -> None:
    reference = github_signature(SECRET, b"Hello, World!")
    assert github_signature(b"another secret", b"Hello, World!") != reference
    assert github_signature(SECRET, b"Hello, World?") != reference


# --- GitHub events --------------------------------------------------------------------


def release_body(
    tag: str = "1.5.3",
    action: str = "published",
    repository: str = "Azure/azure-iotedge",
    draft: bool = False,
    prerelease: bool = False,
) -> bytes:
    return json.dumps(
        {
            "action": action,
            "repository": {"full_name": repository},
            "release": {"tag_name": tag, "draft": draft, "prerelease": prerelease},
        }
    ).encode()


def headers(
    body: bytes,
    event: str = "release",
    delivery: str | None = "d-1",
    signature: str | None = None,
) -> dict[str, str]:
    found = {
        "x-github-event": event,
        "x-hub-signature-256": signature or github_signature(SECRET, body),
    }
    if delivery is not None:
        found["x-github-delivery"] = delivery
    return found


def refused(given: dict[str, str], body: bytes) -> Refused:
    with pytest.raises(Refused) as caught:
        github_event(given, body, SECRET, ALLOWED)
    return caught.value


def test_a_signed_release_is_read() -> None:
    body = release_body("1.5.3", prerelease=True)
    event = github_event(headers(body, delivery="abc-123"), body, SECRET, ALLOWED)
    assert event == GithubRelease(
        delivery="abc-123",
        repository="Azure/azure-iotedge",
        action="published",
        tag_name="1.5.3",
        draft=False,
        prerelease=True,
    )


def test_starlette_headers_are_read_whatever_their_case() -> None:
    body = release_body()
    given = Headers(
        {
            "X-GitHub-Event": "release",
            "X-GitHub-Delivery": "d-9",
            "X-Hub-Signature-256": github_signature(SECRET, body),
        }
    )
    event = github_event(given, body, SECRET, ALLOWED)
    assert isinstance(event, GithubRelease)
    assert event.delivery == "d-9"


def test_a_missing_signature_is_refused_401() -> None:
    body = release_body()
    given = headers(body)
    del given["x-hub-signature-256"]
    assert refused(given, body).status == 401


@pytest.mark.parametrize(
    "signature",
    [
        github_signature(b"wrong secret", release_body()),
        github_signature(SECRET, release_body("1.5.4")),  # another body
        "sha1=" + "0" * 40,
        "",
    ],
)
def test_a_wrong_signature_is_refused_401(signature: str) -> None:
    body = release_body()
    given = headers(body)
    given["x-hub-signature-256"] = signature
    assert refused(given, body).status == 401


def test_the_signature_is_checked_before_anything_else() -> None:
    body = b"not json"
    given = headers(body, delivery=None, signature="sha256=" + "0" * 64)
    assert refused(given, body).status == 401


def test_a_repository_not_allowed_is_refused_403() -> None:
    body = release_body(repository="Someone/azure-iotedge")
    assert refused(headers(body), body).status == 403


def test_the_allowed_repository_is_matched_ignoring_case() -> None:
    body = release_body(repository="AZURE/Azure-IoTEdge")
    assert isinstance(github_event(headers(body), body, SECRET, ALLOWED), GithubRelease)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe",
        json.dumps({"action": "published", "release": {"tag_name": "1.5.3"}}).encode(),
        json.dumps(
            {"action": "published", "repository": {"full_name": "Azure/azure-iotedge"}}
        ).encode(),
        json.dumps(
            {
                "action": "published",
                "repository": {"full_name": "Azure/azure-iotedge"},
                "release": {"tag_name": ""},
            }
        ).encode(),
    ],
)
def test_a_malformed_release_is_refused_422(body: bytes) -> None:
    assert refused(headers(body), body).status == 422


def test_a_missing_delivery_is_refused_422() -> None:
    body = release_body()
    assert refused(headers(body, delivery=None), body).status == 422
    assert refused(headers(body, delivery=""), body).status == 422


def test_ping_is_answered() -> None:
    body = b'{"zen": "Design for failure."}'
    assert github_event(headers(body, event="ping"), body, SECRET, ALLOWED) == Answer(
        200, {"pong": True}
    )


def test_other_events_are_ignored() -> None:
    body = b"{}"
    assert github_event(headers(body, event="push"), body, SECRET, ALLOWED) == Answer(
        200, {"ignored": "event push"}
    )


def test_an_unnamed_event_is_malformed() -> None:
    """X-GitHub-Event is a required header (as the OpenAPI description says)."""
    body = b"{}"
    with pytest.raises(Refused) as refused:
        github_event(headers(body, event=""), body, SECRET, ALLOWED)
    assert refused.value.status == 422


# --- which releases trigger -------------------------------------------------------------


@pytest.fixture(scope="module")
def mirrors() -> Mirrors:
    """The shipped policy with `lines: ["1.5"]`: what a release webhook may trigger."""
    job = Job(
        config=Config.model_validate({"lines": ["1.5"]}),
        source="oci:/nowhere",
        target="oci:/nowhere-else",
        repositories=(AGENT, HUB),
        all_tags=False,
        concurrency=1,
    )
    select = job.selector()
    return lambda version: wanted(version, job.repositories, select)


def event(
    tag: str = "1.5.3", action: str = "published", draft: bool = False, prerelease: bool = False
) -> GithubRelease:
    return GithubRelease("delivery-7", "Azure/azure-iotedge", action, tag, draft, prerelease)


@pytest.mark.parametrize("action", ["published", "released"])
def test_a_published_release_triggers_a_sync_of_it(mirrors: Mirrors, action: str) -> None:
    trigger = release_trigger(event("1.5.3", action), mirrors, NOW)
    assert trigger == Trigger(
        GITHUB_WEBHOOK,
        "github:delivery-7",
        Scope(None, frozenset({Version.parse("1.5.3")})),
        "GitHub release 1.5.3 of Azure/azure-iotedge",
        NOW,
    )


def test_a_v_prefixed_release_is_read(mirrors: Mirrors) -> None:
    trigger = release_trigger(event("v1.5.3"), mirrors, NOW)
    assert isinstance(trigger, Trigger)
    assert trigger.key == "github:delivery-7"
    assert trigger.scope.to_json()["versions"] == ["1.5.3"]
    assert trigger.scope.repositories is None
    assert trigger.detail == "GitHub release v1.5.3 of Azure/azure-iotedge"


@pytest.mark.parametrize(
    ("given", "ignored"),
    [
        (event(action="created"), "action created"),
        (event(action="deleted"), "action deleted"),
        (event(action="edited"), "action edited"),
        (event(action=""), "action unnamed"),
        (event(draft=True), "draft"),
        (event("metrics-collector-1.0.2"), "metrics-collector-1.0.2 is not a runtime version"),
        (event("1.5"), "1.5 is not a runtime version"),
        (event("latest"), "latest is not a runtime version"),
        (event("1.5.3-linux-amd64"), "1.5.3-linux-amd64 is not a runtime version"),
        (event("1.6.1"), "1.6.1: not mirrored by the policy"),  # a line not mirrored
        (event("1.4.0"), "1.4.0: not mirrored by the policy"),
    ],
)
def test_releases_ignored(mirrors: Mirrors, given: GithubRelease, ignored: str) -> None:
    assert release_trigger(given, mirrors, NOW) == Answer(200, {"ignored": ignored})


def test_the_policy_is_not_asked_about_what_is_not_a_version() -> None:
    asked: list[Version] = []

    def mirrors(version: Version) -> bool:
        asked.append(version)
        return True

    assert isinstance(release_trigger(event("metrics-collector-1.0.2"), mirrors, NOW), Answer)
    assert isinstance(release_trigger(event(draft=True), mirrors, NOW), Answer)
    assert asked == []
    assert isinstance(release_trigger(event("1.0.9.4"), mirrors, NOW), Trigger)
    assert asked == [Version.parse("1.0.9.4")]


@pytest.mark.parametrize(
    ("given", "tag"),
    [(event("1.5.4-rc1", prerelease=True), "1.5.4-rc1"), (event("1.5.4-rc.2"), "1.5.4-rc.2")],
)
def test_a_release_candidate_is_said_not_to_be_mirrored(
    mirrors: Mirrors, given: GithubRelease, tag: str
) -> None:
    answer = release_trigger(given, mirrors, NOW)
    assert isinstance(answer, Answer)
    said = answer.body["ignored"]
    assert said.startswith(f"{tag}: ")
    assert "pre-release" in said
    assert "not mirrored" in said, (
        f"an ignored release candidate is answered {said!r}, which says it IS mirrored "
        "(mirror/service/hooks.py release_trigger: the pre-release wording drops the 'not')"
    )


# --- ACR events -------------------------------------------------------------------------


def test_an_acr_push_of_a_tag() -> None:
    document = {
        "id": "e1",
        "action": "push",
        "target": {"repository": AGENT, "tag": "1.5.3", "digest": DIGEST},
    }
    assert acr_event(document) == AcrEvent("push", AGENT, "1.5.3", DIGEST)


def test_an_acr_delete_without_a_digest() -> None:
    document = {"action": "delete", "target": {"repository": HUB, "tag": "1.5", "digest": 7}}
    assert acr_event(document) == AcrEvent("delete", HUB, "1.5", None)


@pytest.mark.parametrize(
    ("document", "ignored"),
    [
        ({"action": "push", "target": {"repository": AGENT, "digest": DIGEST}}, "no tag"),
        ({"action": "push", "target": {"repository": AGENT, "tag": ""}}, "no tag"),
        (
            {"action": "chart_push", "target": {"repository": AGENT, "tag": "1"}},
            "action chart_push",
        ),
        ({"action": "quarantine"}, "action quarantine"),
        ({"action": "push", "target": "azureiotedge-agent:1.5"}, "action push"),
        ({}, "action unnamed"),
    ],
)
def test_acr_events_ignored(document: dict[str, Any], ignored: str) -> None:
    assert acr_event(document) == Answer(200, {"ignored": ignored})


@pytest.mark.parametrize(
    "reference",
    [
        {"repository": "Bad Name", "tag": "1.5.3"},
        {"repository": AGENT, "tag": "bad tag"},
        {"repository": AGENT, "tag": ".hidden"},
        {"tag": "1.5.3"},
        {"repository": 7, "tag": "1.5.3"},
    ],
)
def test_a_malformed_acr_event_is_refused_422(reference: dict[str, Any]) -> None:
    with pytest.raises(Refused) as caught:
        acr_event({"action": "push", "target": reference})
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "reference",
    [{"repository": AGENT, "tag": "1.5.3\n"}, {"repository": f"{AGENT}\n", "tag": "1.5.3"}],
)
def test_a_trailing_newline_is_malformed_too(reference: dict[str, Any]) -> None:
    try:
        answer: AcrEvent | Answer | int = acr_event({"action": "push", "target": reference})
    except Refused as refusal:
        answer = refusal.status
    assert answer == 422, (
        f"{reference} was accepted as {answer}: mirror/reference.py validates tags and "
        "repository components with `re.match` and a `$` anchor, and `$` also matches "
        "before a trailing newline (fullmatch, or \\Z, would refuse it)"
    )


# --- sync requests ----------------------------------------------------------------------

CONFIGURED = frozenset({AGENT, HUB})


def test_an_empty_sync_request_is_every_tag() -> None:
    trigger = sync_request({}, CONFIGURED)
    assert trigger.scope == EVERYTHING
    assert trigger.kind == SYNC_WEBHOOK
    assert trigger.key.startswith("sync:")
    assert trigger.detail == "sync requested: every tag"
    assert sync_request({}, CONFIGURED).key != trigger.key


def test_a_sync_request_names_its_scope() -> None:
    trigger = sync_request(
        {"repositories": [HUB], "lines": ["1.6"], "versions": ["1.5.45"], "tags": ["1.5"]},
        CONFIGURED,
    )
    assert trigger.scope == Scope(
        frozenset({HUB}),
        frozenset({Version.parse("1.5.45")}),
        frozenset({Line(1, 6)}),
        frozenset({"1.5"}),
    )
    assert trigger.detail == f"sync requested: 1.5.45, line 1.6, 1.5 of {HUB}"


@pytest.mark.parametrize(
    "document",
    [
        {"repositories": ["azureiotedge-diagnostics"]},
        {"repositories": [AGENT, "elsewhere/agent"]},
        {"lines": ["1.x"]},
        {"lines": ["1.5.3"]},
        {"lines": "1.5"},
        {"lines": [1.5]},
        {"lines": []},
        {"versions": ["1.5"]},
        {"versions": ["latest"]},
        {"tags": ["bad tag"]},
        {"repositories": []},
    ],
)
def test_a_bad_sync_request_is_refused_422(document: dict[str, Any]) -> None:
    with pytest.raises(Refused) as caught:
        sync_request(document, CONFIGURED)
    assert caught.value.status == 422


# --- bodies over the limit ----------------------------------------------------------------

LIMIT = 1024


async def echo(request: Request) -> Response:
    try:
        body = await read_body(request, LIMIT)
    except Refused as refusal:
        return Response(status_code=refusal.status)
    return JSONResponse({"size": len(body)})


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = Starlette(routes=[Route("/hooks/echo", echo, methods=["POST"])])
    with TestClient(app) as client:
        yield client


def chunks(*sizes: int) -> Iterator[bytes]:
    for size in sizes:
        yield b"x" * size


def test_a_body_within_the_limit_is_read(client: TestClient) -> None:
    answer = client.post("/hooks/echo", content=b"x" * LIMIT)
    assert (answer.status_code, answer.json()) == (200, {"size": LIMIT})


def test_a_declared_length_over_the_limit_is_refused_413(client: TestClient) -> None:
    answer = client.post("/hooks/echo", content=b"x" * (LIMIT + 1))
    assert answer.status_code == 413


def test_a_chunked_body_within_the_limit_is_read(client: TestClient) -> None:
    answer = client.post("/hooks/echo", content=chunks(512, 512))
    assert answer.request.headers.get("content-length") is None
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert (answer.status_code, answer.json()) == (200, {"size": LIMIT})


def test_a_chunked_body_over_the_limit_is_refused_413(client: TestClient) -> None:
    answer = client.post("/hooks/echo", content=chunks(600, 600, 600))
    assert answer.request.headers.get("content-length") is None
    assert answer.status_code == 413

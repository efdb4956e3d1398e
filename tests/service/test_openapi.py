"""The service's API description (`GET /openapi.json`) against the service itself.

Schemathesis loads the description (so it is valid OpenAPI 3) and runs every operation
in it against the ASGI app, with and without credentials: no answer may be a 5xx, use a
status code the description does not list, or break the described schema.

The service is ready (`/readyz` 200): its source and target are OCI image layouts that
exist, its ledger is a SQLite file, every webhook is configured and /status needs a
bearer token. Nothing is started (`manage=False`): a webhook that queues a sync only
writes to the ledger's queue.

The description is loaded once, at import, from a service of its own (so that
`@schema.parametrize()` can use it); every test gets a fresh service behind `Current`.
`schemathesis.pytest.from_fixture` would be simpler, but schemathesis 4.32.5 breaks on
pytest 9 there (`request.node._nodeid`: AttributeError).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from mirror.engine.job import Job
from mirror.ledger import Ledger
from mirror.service.app import create_app
from mirror.service.hooks import github_signature
from mirror.service.service import Service
from mirror.settings.config import Config
from mirror.settings.service import ServiceSettings

REPOS = ("azureiotedge-agent", "azureiotedge-hub")
SECRETS = {
    "MIRROR_GITHUB_SECRET": "github-secret-for-tests",
    "MIRROR_ACR_SECRET": "acr-secret-for-tests",
    "MIRROR_SYNC_TOKEN": "sync-token-for-tests",
    "MIRROR_STATUS_TOKEN": "status-token-for-tests",
}
ACR_HEADER = "X-Mirror-Token"
OPERATIONS = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/status"),
    ("POST", "/hooks/github"),
    ("POST", "/hooks/acr"),
    ("POST", "/hooks/sync"),
}


def not_checked(case: Case[Any]) -> list[CheckFunction]:
    """Schemathesis' checks that do not apply to `case`'s endpoint.

    - `positive_data_acceptance` (a schema-valid request must get a 2xx): a webhook
      checks more than the description says (the repository is a configured one, a
      version follows the tag grammar, GitHub's payload has its fields), and answers
      the documented 422 when it does not;
    - `negative_data_rejection` for /hooks/github (a request that breaks the schema must
      get a 4xx): once the signature over the raw body holds, an event other than
      `release` (a `ping`, a `push`) is answered without reading the body, so a signed
      body that is not a JSON object gets 200 `ignored`.
    """
    skipped: list[CheckFunction] = [schemathesis.checks.positive_data_acceptance]
    if case.operation.path == "/hooks/github":
        skipped.append(schemathesis.checks.negative_data_rejection)
    return skipped


EXAMPLES = hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same requests on every run
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)


def empty_layout(path: Path) -> str:
    """An OCI image layout that holds nothing yet, as `oci:PATH`."""
    path.mkdir(parents=True)
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    return f"oci:{path}"


@contextmanager
def ready_service(directory: Path) -> Iterator[Service]:
    """A service with every webhook and the status token, its state in `directory`;
    ready, and not started."""
    config = Config.model_validate({"lines": ["1.5"]})
    job = Job(
        config=config,
        source=empty_layout(directory / "source"),
        target=empty_layout(directory / "target"),
        repositories=REPOS,
        all_tags=False,
        concurrency=2,
    )
    settings = ServiceSettings.model_validate(
        {
            "run_at_start": False,
            "release_feed": {"enabled": False},
            "tag_watch": {"enabled": False},
            "webhooks": {
                "github": {"secret_env": "MIRROR_GITHUB_SECRET"},
                "acr": {"secret_env": "MIRROR_ACR_SECRET", "header": ACR_HEADER},
                "sync": {"token_env": "MIRROR_SYNC_TOKEN"},
            },
            "status_token_env": "MIRROR_STATUS_TOKEN",
        }
    )
    with Ledger.open(str(directory / "ledger.sqlite")) as ledger:
        service = Service(job, ledger, settings, environ=SECRETS)
        try:
            assert service.not_ready() == []
            yield service
        finally:
            # `stop` expects a started service: start only its (empty) schedules, paused.
            service.scheduler.start(paused=True)
            service.stop(1.0)


class Current:
    """The ASGI app schemathesis calls: it hands every request to the app of the test
    that runs (`create_app(service, manage=False)` of that test's service), so that each
    test has a service of its own while the description is loaded once, at import."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start: manage=False
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.app is not None, "no service: use the `app` fixture"
        await self.app(scope, receive, send)


CURRENT = Current()


def load_description() -> OpenApiSchema:
    """The description as `GET /openapi.json` serves it (from a service of its own)."""
    with (
        tempfile.TemporaryDirectory(prefix="mirror-openapi-") as directory,
        ready_service(Path(directory)) as service,
    ):
        CURRENT.app = create_app(service, manage=False)
        try:
            return schemathesis.openapi.from_asgi("/openapi.json", CURRENT)
        finally:
            CURRENT.app = None


schema = load_description()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with ready_service(tmp_path) as service:
        yield service


@pytest.fixture
def app(service: Service) -> Iterator[Current]:
    CURRENT.app = create_app(service, manage=False)
    yield CURRENT
    CURRENT.app = None
    assert service.not_ready() == [], "the service stopped being ready"


def test_the_description_is_openapi_3_and_covers_the_json_endpoints(app: Current) -> None:
    raw: dict[str, Any] = schema.raw_schema
    assert raw["openapi"].startswith("3.")
    found = {(method.upper(), path) for path, item in raw["paths"].items() for method in item}
    assert found == OPERATIONS
    assert raw["paths"]["/status"]["get"]["security"] == [{"bearer": []}]
    assert raw["components"]["securitySchemes"]["acrSecret"]["name"] == ACR_HEADER
    # The service of a test serves the same description.
    served = schemathesis.openapi.from_asgi("/openapi.json", app)
    assert served.raw_schema == raw


def credentials(case: Case[Any]) -> dict[str, Any]:
    """What an authorized caller sends to `case`'s endpoint: headers, and for GitHub the
    body it signed."""
    path = case.operation.path
    if path == "/status":
        return {"headers": {"Authorization": f"Bearer {SECRETS['MIRROR_STATUS_TOKEN']}"}}
    if path == "/hooks/sync":
        return {"headers": {"Authorization": f"Bearer {SECRETS['MIRROR_SYNC_TOKEN']}"}}
    if path == "/hooks/acr":
        return {"headers": {ACR_HEADER: SECRETS["MIRROR_ACR_SECRET"]}}
    if path == "/hooks/github":
        # Signed over the exact bytes sent: the generated body, serialized here.
        sent = case.as_transport_kwargs()
        raw: object = json.dumps(sent["json"]) if "json" in sent else sent.get("data", b"")
        body = raw.encode() if isinstance(raw, str) else raw
        assert isinstance(body, bytes), f"a body schemathesis serializes as {type(raw)}"
        signature = github_signature(SECRETS["MIRROR_GITHUB_SECRET"].encode(), body)
        return {"headers": {"X-Hub-Signature-256": signature}, "data": body}
    return {}


GITHUB_PING = {"zen": "Keep it logically awesome.", "hook_id": 1}
GITHUB_RELEASE = {
    "action": "published",
    "repository": {"full_name": "Azure/azure-iotedge"},
    "release": {"tag_name": "1.5.99", "draft": False, "prerelease": False},
}
ACR_PUSH = {
    "action": "push",
    "target": {"repository": "azureiotedge-agent", "tag": "1.5.1", "digest": "sha256:" + "a" * 64},
}


@pytest.mark.parametrize(
    ("path", "body", "event", "expected"),
    [
        ("/status", None, None, {"service", "repositories", "last_runs"}),
        ("/hooks/sync", {}, None, {"queued", "scope"}),
        ("/hooks/sync", {"lines": ["1.5"], "repositories": [REPOS[0]]}, None, {"queued"}),
        ("/hooks/acr", ACR_PUSH, None, {"audit"}),
        ("/hooks/acr", {"action": "chart_push"}, None, {"ignored"}),
        ("/hooks/github", GITHUB_PING, "ping", {"pong"}),
        ("/hooks/github", GITHUB_RELEASE, "release", {"queued"}),
    ],
)
def test_what_an_authorized_caller_gets_is_described(
    app: Current,
    path: str,
    body: dict[str, Any] | None,
    event: str | None,
    expected: set[str],
) -> None:
    """The answers the fuzzing rarely reaches (a ping, a release, a mirrored tag pushed in
    ACR, a sync asked for), each checked against the description too."""
    headers = {} if event is None else {"X-GitHub-Event": event, "X-GitHub-Delivery": "d-1"}
    if body is None:
        case = schema[path]["GET"].Case(headers=headers)
    else:
        case = schema[path]["POST"].Case(headers=headers, body=body, media_type="application/json")
    response = case.call_and_validate(**credentials(case))
    assert response.status_code in (200, 202), response.text
    assert expected <= set(response.json()), response.text


@schema.parametrize()
@EXAMPLES
def test_every_operation_answers_as_described_without_credentials(
    case: Case[Any], app: Current
) -> None:
    case.call_and_validate(excluded_checks=not_checked(case))


@schema.parametrize()
@EXAMPLES
def test_every_operation_answers_as_described_with_credentials(
    case: Case[Any], app: Current
) -> None:
    case.call_and_validate(excluded_checks=not_checked(case), **credentials(case))

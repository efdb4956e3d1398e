"""mirror against ACR as it really answers (the reference's "More recorded behaviour").

Real: the registry (Debian's docker-registry, token auth) enforcing every action, and
mirror's own clients, wire and engine. Stand-ins (tests/support/acr.py, entra.py):
ACR's token and metadata endpoints answering as recorded: nested names as one
`%2F`-encoded segment in `/acr/v1` paths, a mount of a blob it holds answered 202
with a new session, bare 401s from the token endpoints, ACR's error bodies, and a
login server reached under its real name by dialling 127.0.0.1 (the `address`
setting). Each test counts the requests the stand-in answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from mirror.engine.connect import acr_metadata, open_registry, open_store
from mirror.engine.sync import SyncOutcome, sync
from mirror.errors import AuthenticationError, NotFound
from mirror.governance.selection import select_all
from mirror.settings.config import Config
from mirror.settings.registries import RegistrySettings, split_host_port
from mirror.transport.acr.metadata import AcrMetadata
from mirror.transport.acr.tokens import EntraCredential
from mirror.transport.auth import DistributionTokens
from mirror.transport.registry import RegistryClient
from mirror.transport.scopes import needed_for
from mirror.transport.store import RegistryLocation, parse_location
from tests.conftest import client_for
from tests.support.acr import ACR_PUSH, METADATA_WRITE, AcrStandIn, RequestRecord
from tests.support.acr_fixtures import AcrSetup
from tests.support.entra import EntraApp, EntraStandIn
from tests.support.images import Pushed, Seeder
from tests.support.registry import Registry
from tests.support.reporting import Quiet

AGENT, HUB = "azureiotedge-agent", "azureiotedge-hub"
_OPENED: list[RegistryClient] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """Every registry client a test opened (through `opened`) is closed after it."""
    yield
    while _OPENED:
        _OPENED.pop().close()


def opened(store: object) -> RegistryClient:
    assert isinstance(store, RegistryClient)
    _OPENED.append(store)
    return store


@pytest.fixture
def source(upstream: Registry) -> RegistryClient:
    return opened(client_for(upstream))


def acr_config(acr: AcrSetup) -> Config:
    return Config.model_validate({"registries": {acr.name: {"acr": True}}})


def open_acr(acr: AcrSetup, app: EntraApp, *, push: bool, prefix: str = "") -> RegistryClient:
    address = f"{acr.url}/{prefix}" if prefix else acr.url
    return opened(open_store(address, acr_config(acr), push=push, credential=acr.credential(app)))


def run(
    source: RegistryClient, target: RegistryClient, config: Config, *repositories: str
) -> SyncOutcome:
    outcome = sync(
        source,
        target,
        repositories or (AGENT,),
        Quiet(),
        select=select_all,
        metadata=acr_metadata(target, config),
    )
    assert outcome.ok, outcome.failures
    return outcome


def uploaded(records: list[RequestRecord]) -> list[str]:
    """The digests of the blob uploads completed (`PUT .../blobs/uploads/...?digest=`)."""
    return [
        part.removeprefix("digest=").replace("%3A", ":")
        for r in records
        if r.method == "PUT" and "/blobs/uploads/" in r.path and r.status == 201
        for part in r.query.split("&")
        if part.startswith("digest=")
    ]


# -- 1. nested repository names -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/acr/v1/library%2Fhello-world/_tags/test1", "metadata_read"),
        ("PATCH", "/acr/v1/library%2Fhello-world/_manifests/sha256%3A40d0", "metadata_write"),
        ("GET", "/acr/v1/library%2Fhello-world/_tags", "metadata_read"),
        ("GET", "/acr/v1/library/hello-world/_tags", "metadata_read"),  # a Link, unencoded
    ],
)
def test_the_scope_of_an_acr_v1_path_is_read_from_the_raw_path(
    method: str, path: str, needed: str
) -> None:
    assert needed_for(method, path, "api-version=2021-07-01", push=True) == {
        ("repository", "library/hello-world"): frozenset({needed})
    }


def test_a_one_tag_sync_into_a_nested_repository_is_challenged_once(
    acr: AcrSetup, source: RegistryClient, seeder: Seeder
) -> None:
    """`myacr.azurecr.io/edge`: every name is nested. One 401 (the first request, which
    teaches mirror the realm); every later scope is fetched before its first request,
    the metadata ones included, so one token per scope and no token thrown away."""
    release = seeder.push_release(AGENT, "1.5.0")
    target = open_acr(acr, acr.push, push=True, prefix="edge")
    acr.counters.reset()
    outcome = run(source, target, acr_config(acr))

    records = acr.counters.requests
    challenged = [(r.method, r.path) for r in records if r.status == 401]
    assert challenged == [("GET", f"/v2/edge/{AGENT}/tags/list")]
    metadata = [r for r in records if r.path.startswith("/acr/v1/")]
    assert metadata and all(r.raw_path.startswith(f"/acr/v1/edge%2F{AGENT}/") for r in metadata)
    assert sorted(scope for scopes in acr.counters.token_scopes for scope in scopes) == [
        f"repository:edge/{AGENT}:metadata_read",
        f"repository:edge/{AGENT}:metadata_write",
        f"repository:edge/{AGENT}:pull,push",
    ]
    assert outcome.locked == [(AGENT, "1.5.0")]
    assert acr.service.attributes(f"edge/{AGENT}", "1.5.0").locked
    assert acr.service.attributes(f"edge/{AGENT}", release.digest).locked


# -- 2. blob presence -----------------------------------------------------------------


def test_an_incremental_sync_uploads_no_blob_already_present(
    acr: AcrSetup, source: RegistryClient, seeder: Seeder
) -> None:
    """The stand-in answers a mount of a blob it holds with 202 and a new session, as
    ACR does: mirror asks with a HEAD instead, and uploads only what is missing."""
    seeder.push_release(AGENT, "1.5.0")
    target = open_acr(acr, acr.push, push=True)
    acr.counters.reset()
    first = run(source, target, acr_config(acr))
    present = set(uploaded(acr.counters.requests))
    assert len(present) == first.result.uploaded > 0

    seeder.push_release(AGENT, "1.5.1")  # shares its base layers with 1.5.0
    acr.counters.reset()
    second = run(source, target, acr_config(acr))
    records = acr.counters.requests
    again = uploaded(records)
    assert again and not present & set(again), "a blob already present was uploaded again"
    assert second.result.present > 0
    assert second.result.uploaded == len(again)
    heads = [r for r in records if r.method == "HEAD" and "/blobs/" in r.path]
    assert len(heads) == second.result.present + second.result.uploaded
    assert sorted(r.status for r in heads) == [200] * second.result.present + [404] * len(again)
    assert not [r for r in records if "mount=" in r.query]  # no mount asks for presence


def test_a_cross_repository_mount_is_used_when_acr_makes_it(
    acr_factory: Callable[..., AcrStandIn],
    entra: EntraStandIn,
    source: RegistryClient,
    seeder: Seeder,
) -> None:
    """Shared layers go to the second repository by mount when the registry mounts (201);
    when it answers 202 instead (the recorded default) they are uploaded in that session."""
    for repository in (AGENT, HUB):
        seeder.push_release(repository, "1.5.0")
    outcomes = []
    for mounts in (True, False):
        service = acr_factory(cross_repository_mounts=mounts)
        app = service.assign(entra.register(f"push-{mounts}"), ACR_PUSH, METADATA_WRITE)
        config = Config.model_validate({"registries": {service.name: {"acr": True}}})
        target = opened(
            open_store(service.url, config, push=True, credential=entra.credential(app))
        )
        outcome = run(source, target, config, AGENT, HUB)
        mount_answers = [r.status for r in service.counters.requests if "mount=" in r.query]
        outcomes.append((outcome.result.mounted, outcome.result.present, mount_answers))
    (mounted, present, answers), (fallback, present_too, answers_too) = outcomes
    assert mounted > 0 and present == 0 and set(answers) == {201}
    assert fallback == 0 and present_too == 0 and set(answers_too) == {202}


def test_elsewhere_one_mount_request_still_answers_presence(
    target: Registry, source: RegistryClient, seeder: Seeder
) -> None:
    """A distribution registry answers a mount from the repository itself with 201 when
    the blob is there: one POST per present blob, no HEAD."""
    seeder.push_release(AGENT, "1.5.0")
    client = opened(open_store(target.url, Config(), push=True))
    assert not client.check_presence
    run(source, client, Config())
    seeder.push_release(AGENT, "1.5.1")
    mark = len(target.requests())
    second = run(source, client, Config())
    blob_requests = [r for r in target.requests_since(mark) if "/blobs/" in r.path]
    assert second.result.present > 0
    assert not [r for r in blob_requests if r.method == "HEAD"]
    mounts = [r for r in blob_requests if r.method == "POST" and r.status == 201]
    assert len(mounts) == second.result.present


# -- 3. the token for GET /v2/ -------------------------------------------------------


def test_the_api_version_check_asks_for_registry_catalog(acr: AcrSetup) -> None:
    reader = open_acr(acr, acr.pull, push=False)
    acr.counters.reset()
    reader.ping()
    assert acr.counters.token_scopes == [["registry:catalog:*"]]
    assert [(r.path, r.status) for r in acr.counters.requests if r.path == "/v2/"] == [
        ("/v2/", 401),
        ("/v2/", 200),
    ]


# -- 5. what a refusal names ---------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    token: str


@dataclass
class ForeignAudience:
    """An Entra credential whose token is for another audience (Azure Resource Manager)."""

    entra: EntraStandIn
    app: EntraApp

    def get_token(self, *scopes: str) -> _Token:
        now = int(time.time())
        claims = {
            "aud": "https://management.azure.com",
            "iss": self.entra.issuer,
            "iat": now,
            "exp": now + 3600,
            "appid": self.app.client_id,
            "oid": self.app.object_id,
            "tid": self.entra.tenant_id,
        }
        key_id = {"kid": self.entra.key_id}
        return _Token(jwt.encode(claims, self.entra.key, algorithm="RS256", headers=key_id))


def refusal(acr: AcrSetup, credential: EntraCredential) -> str:
    """What mirror says when it lists tags as `credential`."""
    reader = opened(open_store(acr.url, acr_config(acr), credential=credential))
    with pytest.raises(AuthenticationError) as refused:
        reader.list_tags(AGENT)
    return str(refused.value)


def bare_401s(acr: AcrSetup, path: str) -> int:
    return sum(1 for r in acr.counters.requests if r.path == path and r.status == 401)


def test_a_refused_refresh_token_says_the_credentials_were_refused(acr: AcrSetup) -> None:
    acr.service.refresh_token_lifetime = -1  # every refresh token is issued expired
    message = refusal(acr, acr.credential(acr.pull))
    assert "the credentials were refused" in message
    assert "role" not in message
    assert (acr.counters.exchanges, bare_401s(acr, "/oauth2/token")) == (2, 2)


@pytest.mark.parametrize("foreign", ["tenant", "audience"])
def test_an_entra_token_acr_does_not_accept_says_wrong_tenant_or_audience(
    acr: AcrSetup, tmp_path: Path, foreign: str
) -> None:
    if foreign == "tenant":
        other = EntraStandIn(tmp_path / "other-tenant")  # only mints: never started
        credential: EntraCredential = other.credential(other.register("elsewhere"))
    else:
        credential = ForeignAudience(acr.entra, acr.pull)
    message = refusal(acr, credential)
    assert "the Microsoft Entra token is not accepted (wrong tenant or audience" in message
    assert "role" not in message
    assert bare_401s(acr, "/oauth2/exchange") == 1
    assert acr.counters.count(path="/oauth2/token") == 0


def test_a_missing_role_is_a_token_without_the_action(acr: AcrSetup) -> None:
    nobody = acr.service.assign(acr.entra.register("no-role"))  # no role at all
    message = refusal(acr, acr.credential(nobody))
    assert f"do not allow repository:{AGENT}:pull: check the identity's role" in message
    assert acr.counters.tokens_refused == acr.counters.exchanges_refused == 0
    scoped = [r for r in acr.counters.requests if r.path.startswith(f"/v2/{AGENT}/")]
    assert [r.status for r in scoped] == [401, 401]  # the challenge; the token refused
    assert acr.counters.tokens == 1  # answered 200, without the action


def test_a_wrong_secret_on_the_token_endpoint_says_the_credentials_were_refused(
    acr: AcrSetup,
) -> None:
    location = parse_location(acr.url)
    assert isinstance(location, RegistryLocation)
    config = acr_config(acr)
    tokens = DistributionTokens(acr.pull.client_id, "not-the-secret")
    reader = opened(
        open_registry(location, config.registry(acr.name), config, push=False, source=tokens)
    )
    with pytest.raises(
        AuthenticationError, match=f"refused the credentials of user {acr.pull.client_id}"
    ):
        reader.list_tags(AGENT)
    assert bare_401s(acr, "/oauth2/token") == 1


# -- 6. /acr/v1 error bodies -----------------------------------------------------------


def test_acr_v1_errors_name_their_code_and_the_action_refused(
    acr: AcrSetup, source: RegistryClient, seeder: Seeder
) -> None:
    seeder.push_release(AGENT, "1.5.0")
    run(source, open_acr(acr, acr.push, push=True, prefix="edge"), acr_config(acr))
    reader = AcrMetadata(open_acr(acr, acr.pull, push=False, prefix="edge"))

    with pytest.raises(NotFound) as missing:
        reader.tag(AGENT, "9.9.9")
    assert "(TAG_UNKNOWN: the specified tag does not exist)" in str(missing.value)
    assert missing.value.code == "TAG_UNKNOWN"

    with pytest.raises(AuthenticationError) as refused:
        reader.touch(AGENT, "1.5.0")  # acrPull reads attributes, cannot write them
    message = str(refused.value)
    assert "UNAUTHORIZED: authentication required" in message
    assert f"do not allow metadata_write (repository:edge/{AGENT}:metadata_write)" in message
    assert "metadata/write" in message


# -- 7. an address for a host ----------------------------------------------------------


def test_the_address_setting_is_checked() -> None:
    assert split_host_port("10.1.2.3:443", 80) == ("10.1.2.3", 443)
    assert split_host_port("[FD00::5]", 5000) == ("fd00::5", 5000)
    assert split_host_port("Registry.Test", 443) == ("registry.test", 443)
    for wrong in ("10.1.2.3:99999", "http://10.1.2.3", "a b", "10.1.2.3:"):
        with pytest.raises(ValidationError):
            RegistrySettings(address=wrong)


def test_a_registry_under_a_made_up_name(
    target: Registry, source: RegistryClient, seeder: Seeder, target_seeder: Seeder
) -> None:
    """`registry.test:PORT`, which no resolver knows, dialled at 127.0.0.1:PORT."""
    release = seeder.push_release(AGENT, "1.5.0")
    port = int(target.url.rpartition(":")[2])
    name = f"registry.test:{port}"
    config = Config.model_validate(
        {"registries": {name: {"insecure": True, "address": f"127.0.0.1:{port}"}}}
    )
    client = opened(open_store(f"http://{name}", config, push=True))
    run(source, client, config)
    assert target_seeder.digest_of(AGENT, "1.5.0") == release.digest


def test_a_sync_into_acr_under_its_real_name_over_tls(
    acr_factory: Callable[..., AcrStandIn],
    entra: EntraStandIn,
    source: RegistryClient,
    seeder: Seeder,
) -> None:
    """`myacr.azurecr.io/edge` with `address: 127.0.0.1:PORT`: the login server, realm and
    certificate are for that name; nothing says `acr: true` (the name says it), so the
    presence check is a HEAD and the specific tag is locked."""
    service = acr_factory(reached_as="myacr.azurecr.io", tls=True)
    app = service.assign(entra.register("mirror-push"), ACR_PUSH, METADATA_WRITE)
    settings = {"address": f"127.0.0.1:{service.port}", "ca_bundle": str(service.ca_bundle)}
    config = Config.model_validate({"registries": {"myacr.azurecr.io": settings}})
    target = opened(
        open_store("myacr.azurecr.io/edge", config, push=True, credential=entra.credential(app))
    )
    assert target.check_presence
    releases: list[Pushed] = []
    try:
        for version in ("1.5.0", "1.5.1"):
            releases.append(seeder.push_release(AGENT, version))
            run(source, target, config)
    finally:
        target.close()  # before the service stops: idle TLS connections would linger
    assert service.realm == "https://myacr.azurecr.io/oauth2/token"
    for release in releases:
        assert service.attributes(f"edge/{AGENT}", release.tag).locked
    records = service.counters.requests
    assert not [r for r in records if "mount=" in r.query]
    assert any(r.method == "HEAD" and r.status == 200 and "/blobs/" in r.path for r in records)
    assert service.counters.exchanges == 1

"""Tests of the ACR and Entra stand-ins themselves, driven with plain httpx.

They pin the behaviour other tests rely on: ACR's challenges and error bodies, the
exchange -> token -> registry sequence, scope enforcement by the real registry, locks,
the metadata API, and the counters.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from azure.containerregistry import ContainerRegistryClient
from azure.identity import ClientSecretCredential
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.acr import (
    ACR_DELETE,
    DISALLOWED_BODY,
    NULL_GUID,
    OWNER,
    UNAUTHORIZED_MESSAGE,
    AcrStandIn,
)
from tests.support.acr_fixtures import AcrSetup
from tests.support.entra import ACR_AUDIENCE, ACR_SCOPE, EntraApp, EntraStandIn
from tests.support.images import DOCKER_LIST, Pushed, Seeder

pytestmark = pytest.mark.registry

REPO = "azureiotedge-agent"
ACCEPT = {"Accept": DOCKER_LIST}
SMALL: dict[str, Any] = {
    "layer_size": 64,
    "base_size": 64,
    "platforms": (("linux", "amd64", None),),
}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as http:
        yield http


def exchange(client: httpx.Client, service: AcrStandIn, entra_token: str) -> httpx.Response:
    form = {"grant_type": "access_token", "service": service.name, "access_token": entra_token}
    return client.post(f"{service.url}/oauth2/exchange?api-version=2021-07-01", data=form)


def refresh_token(client: httpx.Client, acr: AcrSetup, app: EntraApp) -> str:
    entra_token = acr.credential(app).get_token(ACR_SCOPE).token
    response = exchange(client, acr.service, entra_token)
    response.raise_for_status()
    return str(response.json()["refresh_token"])


def access_token(client: httpx.Client, service: AcrStandIn, refresh: str, *scopes: str) -> str:
    form = {
        "grant_type": "refresh_token",
        "service": service.name,
        "refresh_token": refresh,
        "scope": list(scopes),
    }
    response = client.post(f"{service.url}/oauth2/token", data=form)
    response.raise_for_status()
    return str(response.json()["access_token"])


def token_for(client: httpx.Client, acr: AcrSetup, app: EntraApp, *scopes: str) -> str:
    return access_token(client, acr.service, refresh_token(client, acr, app), *scopes)


def actions(token: str) -> dict[str, list[str]]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {entry["name"]: entry["actions"] for entry in claims["access"]}


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def basic(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def challenge(service: AcrStandIn, scope: str | None, error: str) -> str:
    scope_part = f',scope="{scope}"' if scope else ""
    return (
        f'Bearer realm="{service.url}/oauth2/token",service="{service.name}"'
        f'{scope_part},error="{error}"'
    )


def sorted_actions(header: str) -> str:
    """The challenge with its scope's actions sorted (the registry lists them in any order)."""
    return re.sub(
        r'(scope="[^"]*:)([^":]*)"',
        lambda m: m[1] + ",".join(sorted(m[2].split(","))) + '"',
        header,
    )


def seed(service: AcrStandIn, app: EntraApp, repository: str) -> Pushed:
    """Push one small release as `app`, authenticating with HTTP Basic like `docker login`."""
    verify = ssl.create_default_context(cafile=service.ca_bundle) if service.ca_bundle else True
    with httpx.Client(trust_env=False, verify=verify) as http:
        response = http.get(
            f"{service.url}/oauth2/token",
            params={"service": service.name, "scope": f"repository:{repository}:pull,push"},
            headers=basic(app.client_id, app.secret),
        )
    seeder = Seeder(service.url)
    seeder.client = httpx.Client(
        base_url=service.url,
        verify=verify,
        trust_env=False,
        headers=bearer(response.json()["access_token"]),
    )
    try:
        return seeder.push_release(repository, "1.5.0", **SMALL)
    finally:
        seeder.close()


@pytest.fixture
def pushed(client: httpx.Client, acr: AcrSetup) -> tuple[Pushed, str]:
    """One release pushed as the push principal, and that principal's access token."""
    token = token_for(
        client, acr, acr.push, f"repository:{REPO}:pull,push,metadata_read,metadata_write"
    )
    seeder = Seeder(acr.url)
    seeder.client.headers["Authorization"] = f"Bearer {token}"
    try:
        return seeder.push_release(REPO, "1.5.0", **SMALL), token
    finally:
        seeder.close()


def test_anonymous_requests_get_acrs_challenges(client: httpx.Client, acr: AcrSetup) -> None:
    service = acr.service
    root = client.get(f"{acr.url}/v2/")
    pull = client.get(f"{acr.url}/v2/{REPO}/manifests/1.5.0", headers=ACCEPT)
    push = client.put(f"{acr.url}/v2/{REPO}/manifests/1.5.0", content=b"{}")

    assert root.status_code == pull.status_code == push.status_code == 401
    assert root.headers["WWW-Authenticate"] == challenge(service, None, "invalid_token")
    assert pull.headers["WWW-Authenticate"] == challenge(
        service, f"repository:{REPO}:pull", "invalid_token"
    )
    assert sorted_actions(push.headers["WWW-Authenticate"]) == challenge(
        service, f"repository:{REPO}:pull,push", "invalid_token"
    )
    detail = [{"Type": "repository", "Name": REPO, "Action": "pull"}]
    assert pull.json() == {
        "errors": [{"code": "UNAUTHORIZED", "message": UNAUTHORIZED_MESSAGE, "detail": detail}]
    }
    anonymous = {"grant_type": "password", "service": acr.name, "refresh_token": ""}
    refused = client.post(f"{acr.url}/oauth2/token", data=anonymous)
    assert (refused.status_code, refused.content) == (401, b"")


def test_exchange_token_then_push_and_pull(
    client: httpx.Client, acr: AcrSetup, pushed: tuple[Pushed, str]
) -> None:
    release, push_token = pushed
    assert actions(push_token) == {REPO: ["pull", "push", "metadata_read", "metadata_write"]}

    pull_token = token_for(client, acr, acr.pull, f"repository:{REPO}:pull")
    manifest = client.get(
        f"{acr.url}/v2/{REPO}/manifests/1.5.0", headers=bearer(pull_token, **ACCEPT)
    )

    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == release.digest
    assert acr.counters.exchanges == 2
    registry_log = acr.service.registry.requests()
    assert any(r.method == "PUT" and r.status == 201 for r in registry_log)


def test_pull_only_identity_is_refused_push_by_the_registry(
    client: httpx.Client, acr: AcrSetup, pushed: tuple[Pushed, str]
) -> None:
    scope = f"repository:{REPO}:pull,push"
    pull_token = token_for(client, acr, acr.pull, scope)
    assert actions(pull_token) == {REPO: ["pull"]}
    assert actions(token_for(client, acr, acr.pull_can_push, scope)) == {REPO: ["pull", "push"]}

    mark = len(acr.service.registry.requests())
    upload = client.post(f"{acr.url}/v2/{REPO}/blobs/uploads/", headers=bearer(pull_token))

    assert upload.status_code == 401
    assert sorted_actions(upload.headers["WWW-Authenticate"]) == challenge(
        acr.service, scope, "insufficient_scope"
    )
    assert upload.json()["errors"][0]["code"] == "UNAUTHORIZED"
    refused = acr.service.registry.requests_since(mark)
    assert [(r.method, r.status) for r in refused] == [("POST", 401)]


def test_locked_tag_and_manifest_refuse_writes(
    client: httpx.Client, acr: AcrSetup, pushed: tuple[Pushed, str]
) -> None:
    release, token = pushed
    tag_url = f"{acr.url}/acr/v1/{REPO}/_tags/1.5.0?api-version=2021-07-01"
    locked = client.patch(
        tag_url, json={"writeEnabled": False, "deleteEnabled": False}, headers=bearer(token)
    )
    assert locked.status_code == 200
    assert locked.json()["tag"]["changeableAttributes"]["writeEnabled"] is False

    index = client.get(f"{acr.url}/v2/{REPO}/manifests/1.5.0", headers=bearer(token, **ACCEPT))
    put = client.put(
        f"{acr.url}/v2/{REPO}/manifests/1.5.0",
        content=index.content,
        headers=bearer(token, **{"Content-Type": DOCKER_LIST}),
    )
    assert (put.status_code, put.json()) == (405, DISALLOWED_BODY)

    acr.service.assign(acr.push, ACR_DELETE)
    delete_token = token_for(client, acr, acr.push, f"repository:{REPO}:delete")
    delete = client.delete(
        f"{acr.url}/v2/{REPO}/manifests/{release.digest}", headers=bearer(delete_token)
    )
    assert (delete.status_code, delete.json()) == (405, DISALLOWED_BODY)

    acr.service.lock(REPO, release.children[0])
    child = client.get(
        f"{acr.url}/v2/{REPO}/manifests/{release.children[0]}",
        headers=bearer(token, Accept="application/vnd.docker.distribution.manifest.v2+json"),
    )
    child_put = client.put(
        f"{acr.url}/v2/{REPO}/manifests/{release.children[0]}",
        content=child.content,
        headers=bearer(token, **{"Content-Type": child.headers["Content-Type"]}),
    )
    assert child_put.status_code == 405

    client.patch(tag_url, json={"writeEnabled": True}, headers=bearer(token)).raise_for_status()
    put = client.put(
        f"{acr.url}/v2/{REPO}/manifests/1.5.0",
        content=index.content,
        headers=bearer(token, **{"Content-Type": DOCKER_LIST}),
    )
    assert put.status_code == 201


def test_metadata_api_reads_and_guards_attributes(
    client: httpx.Client, acr: AcrSetup, pushed: tuple[Pushed, str]
) -> None:
    release, token = pushed
    base = f"{acr.url}/acr/v1/{REPO}"
    tag = client.get(f"{base}/_tags/1.5.0?api-version=2021-07-01", headers=bearer(token))
    assert tag.status_code == 200
    body = tag.json()
    assert (body["registry"], body["imageName"]) == (acr.name, REPO)
    assert body["tag"]["digest"] == release.digest
    assert set(body["tag"]) == {
        "name",
        "digest",
        "createdTime",
        "lastUpdateTime",
        "signed",
        "changeableAttributes",
    }
    manifest = client.get(f"{base}/_manifests/{release.digest}", headers=bearer(token)).json()
    assert manifest["manifest"]["tags"] == ["1.5.0"]

    pull_token = token_for(client, acr, acr.pull, f"repository:{REPO}:metadata_read")
    denied = client.patch(
        f"{base}/_tags/1.5.0", json={"writeEnabled": False}, headers=bearer(pull_token)
    )
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"] == challenge(
        acr.service, f"repository:{REPO}:metadata_write", "insufficient_scope"
    )
    anonymous = client.get(f"{base}/_tags/1.5.0")
    assert anonymous.headers["WWW-Authenticate"] == challenge(
        acr.service, f"repository:{REPO}:metadata_read", "invalid_token"
    )

    missing_tag = client.get(f"{base}/_tags/9.9.9", headers=bearer(token))
    missing_manifest = client.get(f"{base}/_manifests/sha256:{'0' * 64}", headers=bearer(token))
    assert (missing_tag.status_code, missing_tag.json()["errors"][0]["code"]) == (
        404,
        "TAG_UNKNOWN",
    )
    assert missing_manifest.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert acr.service.attributes(REPO, "1.5.0").writeEnabled is True


def test_basic_auth_tokens_and_bare_401s(
    client: httpx.Client, acr: AcrSetup, entra: EntraStandIn
) -> None:
    url = f"{acr.url}/oauth2/token"
    params = {"service": acr.name, "scope": f"repository:{REPO}:pull,push"}
    sp = client.get(url, params=params, headers=basic(acr.pull.client_id, acr.pull.secret))
    assert actions(sp.json()["access_token"]) == {REPO: ["pull"]}
    token = client.get(
        url, params=params, headers=basic(acr.pull_token.name, acr.pull_token.password)
    )
    assert actions(token.json()["access_token"]) == {REPO: ["pull"]}
    refresh = refresh_token(client, acr, acr.push)
    null_guid = client.get(url, params=params, headers=basic(NULL_GUID, refresh))
    assert actions(null_guid.json()["access_token"]) == {REPO: ["pull", "push"]}

    several = access_token(
        client, acr.service, refresh, "repository:a:pull repository:b:push", "repository:c:pull"
    )
    assert actions(several) == {"a": ["pull"], "b": ["push"], "c": ["pull"]}

    bad_secret = client.get(url, params=params, headers=basic(acr.pull.client_id, "wrong"))
    bad_refresh = client.post(
        url, data={"grant_type": "refresh_token", "service": acr.name, "refresh_token": "x.y.z"}
    )
    forged = entra.mint(acr.push)[0]
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        jwt.decode(forged, options={"verify_signature": False}), foreign_key, "RS256"
    )
    bad_exchange = exchange(client, acr.service, forged)
    for refused in (bad_secret, bad_refresh, bad_exchange):
        assert refused.status_code == 401
        assert refused.content == b""
        assert "WWW-Authenticate" not in refused.headers


def test_azure_identity_client_secret_credential_is_accepted(
    client: httpx.Client, acr: AcrSetup, entra: EntraStandIn
) -> None:
    credential = ClientSecretCredential(
        entra.tenant_id,
        acr.pull.client_id,
        acr.pull.secret,
        authority=entra.authority,
        disable_instance_discovery=True,
        connection_verify=str(entra.ca_bundle),
    )
    entra_token = credential.get_token(ACR_SCOPE).token
    credential.close()
    assert jwt.decode(entra_token, options={"verify_signature": False})["aud"] == ACR_AUDIENCE

    refresh = exchange(client, acr.service, entra_token).json()["refresh_token"]
    token = access_token(client, acr.service, refresh, "registry:catalog:*")
    catalog = client.get(f"{acr.url}/v2/_catalog", headers=bearer(token))
    assert catalog.status_code == 200
    assert entra.counters.tokens_issued == 1


def test_azure_containerregistry_sdk_reads_and_locks_over_tls(
    acr_factory: Callable[..., AcrStandIn], entra: EntraStandIn
) -> None:
    service = acr_factory(tls=True)
    app = service.assign(entra.register("sdk"), OWNER)
    seed(service, app, "iotedge/agent")
    sdk = ContainerRegistryClient(
        service.url,
        entra.credential(app),
        audience=ACR_AUDIENCE,
        connection_verify=str(service.ca_bundle),
    )
    with sdk:
        locked = sdk.update_tag_properties("iotedge/agent", "1.5.0", can_write=False)
        listed = [tag.name for tag in sdk.list_tag_properties("iotedge/agent")]
        manifest = sdk.get_manifest_properties("iotedge/agent", locked.digest)

    assert (locked.can_write, locked.can_delete) == (False, True)
    assert listed == ["1.5.0"]
    assert manifest.tags == ["1.5.0"]
    assert service.attributes("iotedge/agent", "1.5.0").writeEnabled is False


def test_percent_encoded_repository_names(client: httpx.Client, acr: AcrSetup) -> None:
    release = seed(acr.service, acr.push, "iotedge/agent")
    token = token_for(client, acr, acr.pull, "repository:iotedge/agent:pull,metadata_read")
    manifest = client.get(
        f"{acr.url}/v2/iotedge%2Fagent/manifests/1.5.0", headers=bearer(token, **ACCEPT)
    )
    tag = client.get(f"{acr.url}/acr/v1/iotedge%2Fagent/_tags/1.5.0", headers=bearer(token))
    assert manifest.headers["Docker-Content-Digest"] == release.digest
    assert tag.json()["tag"]["digest"] == release.digest


def test_expired_tokens_and_counters(client: httpx.Client, acr: AcrSetup) -> None:
    service, scope = acr.service, f"repository:{REPO}:pull"
    credential = acr.credential(acr.pull)
    entra_token = credential.get_token(ACR_SCOPE).token
    refresh = exchange(client, service, entra_token).json()["refresh_token"]
    first = access_token(client, service, refresh, scope)
    access_token(client, service, refresh, f"repository:{REPO}-other:pull")
    assert (credential.calls, service.counters.exchanges, service.counters.tokens) == (1, 1, 2)

    service.expire_refresh_tokens()
    form = {"grant_type": "refresh_token", "service": service.name, "scope": scope}
    expired = client.post(f"{service.url}/oauth2/token", data={**form, "refresh_token": refresh})
    assert (expired.status_code, service.counters.tokens_refused) == (401, 1)

    service.refresh_token_lifetime = -1  # issued already expired
    stale = exchange(client, service, entra_token).json()["refresh_token"]
    refused = client.post(f"{service.url}/oauth2/token", data={**form, "refresh_token": stale})
    assert refused.status_code == 401

    seen: list[str] = []
    service.hooks.append(lambda record: seen.append(record.path))
    service.expire_access_tokens()
    challenged = client.get(f"{service.url}/v2/{REPO}/tags/list", headers=bearer(first))
    assert challenged.headers["WWW-Authenticate"] == challenge(service, scope, "invalid_token")
    assert service.counters.count("POST", "/oauth2/exchange") == 2
    assert service.counters.count(path="/v2/") == 1
    assert seen == [f"/v2/{REPO}/tags/list"]


def test_anonymous_pull_when_enabled(
    client: httpx.Client, acr_factory: Callable[..., AcrStandIn], entra: EntraStandIn
) -> None:
    service = acr_factory(anonymous_pull=True, name="edgemirror.azurecr.io")
    owner = service.assign(entra.register("owner"), OWNER)
    scope = f"repository:{REPO}:pull,push"
    owner_token = client.get(
        f"{service.url}/oauth2/token",
        params={"service": service.name, "scope": scope},
        headers=basic(owner.client_id, owner.secret),
    ).json()["access_token"]
    seeder = Seeder(service.url)
    seeder.client.headers["Authorization"] = f"Bearer {owner_token}"
    release = seeder.push_release(REPO, "1.5.0", **SMALL)
    seeder.close()

    form = {"grant_type": "password", "service": service.name, "refresh_token": "", "scope": scope}
    token = client.post(f"{service.url}/oauth2/token", data=form).json()["access_token"]
    assert actions(token) == {REPO: ["pull"]}
    manifest = client.get(
        f"{service.url}/v2/{REPO}/manifests/1.5.0", headers=bearer(token, **ACCEPT)
    )
    assert manifest.headers["Docker-Content-Digest"] == release.digest
    upload = client.post(f"{service.url}/v2/{REPO}/blobs/uploads/", headers=bearer(token))
    assert upload.status_code == 401
    assert sorted_actions(upload.headers["WWW-Authenticate"]) == challenge(
        service, scope, "insufficient_scope"
    )


EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_mounts_presence_and_upload_sessions_as_acr_answers_them(
    client: httpx.Client, acr: AcrSetup, pushed: tuple[Pushed, str]
) -> None:
    """A mount of a blob the repository holds: 202 and a new session, not 201. Presence
    is a HEAD. Cancelling a session needs `delete` (acrPush has none); completing it
    with the empty blob needs only push. `open_uploads` follows the sessions."""
    release, token = pushed
    layer = release.blobs[0]
    uploads = f"{acr.url}/v2/{REPO}/blobs/uploads/"
    mount = client.post(f"{uploads}?mount={layer}&from={REPO}", headers=bearer(token))
    assert mount.status_code == 202
    session = mount.headers["Location"]
    assert session.startswith(f"/v2/{REPO}/blobs/uploads/")
    assert list(acr.service.open_uploads.values()) == [REPO]

    present = client.head(f"{acr.url}/v2/{REPO}/blobs/{layer}", headers=bearer(token))
    absent = client.head(f"{acr.url}/v2/{REPO}/blobs/{EMPTY}", headers=bearer(token))
    assert present.status_code == 200
    assert present.headers["Docker-Content-Digest"] == layer
    assert int(present.headers["Content-Length"]) > 0
    assert (absent.status_code, absent.content) == (404, b"")

    cancel = client.delete(f"{acr.url}{session}", headers=bearer(token))
    assert cancel.status_code == 401
    assert 'error="insufficient_scope"' in cancel.headers["WWW-Authenticate"]
    assert len(acr.service.open_uploads) == 1
    separator = "&" if "?" in session else "?"
    done = client.put(f"{acr.url}{session}{separator}digest={EMPTY}", headers=bearer(token))
    assert done.status_code == 201
    assert acr.service.open_uploads == {}


def test_cross_repository_mounts_are_made_only_when_set(
    client: httpx.Client, acr_factory: Callable[..., AcrStandIn], entra: EntraStandIn
) -> None:
    for mounts, expected in ((False, 202), (True, 201)):
        service = acr_factory(cross_repository_mounts=mounts)
        owner = service.assign(entra.register(f"owner-{mounts}"), OWNER)
        release = seed(service, owner, REPO)
        scope = f"repository:{REPO}-copy:pull,push repository:{REPO}:pull"
        token = client.get(
            f"{service.url}/oauth2/token",
            params={"service": service.name, "scope": scope},
            headers=basic(owner.client_id, owner.secret),
        ).json()["access_token"]
        mount = client.post(
            f"{service.url}/v2/{REPO}-copy/blobs/uploads/?mount={release.blobs[0]}&from={REPO}",
            headers=bearer(token),
        )
        assert mount.status_code == expected


def test_requests_are_recorded_as_sent_and_token_scopes_counted(
    client: httpx.Client, acr: AcrSetup
) -> None:
    refresh = refresh_token(client, acr, acr.pull)
    token = access_token(client, acr.service, refresh, "repository:iotedge/agent:metadata_read")
    form = {"grant_type": "refresh_token", "service": acr.name, "refresh_token": refresh}
    client.post(f"{acr.url}/oauth2/token", data={**form, "scope": "registry:catalog:*"})
    assert acr.counters.token_scopes == [
        ["repository:iotedge/agent:metadata_read"],
        ["registry:catalog:*"],
    ]
    missing = client.get(f"{acr.url}/acr/v1/iotedge%2Fagent/_tags/9.9.9?api-version=2021-07-01")
    record = acr.counters.requests[-1]
    assert (record.path, record.raw_path) == (
        "/acr/v1/iotedge/agent/_tags/9.9.9",
        "/acr/v1/iotedge%2Fagent/_tags/9.9.9",
    )
    assert missing.status_code == 401  # no token: challenged for metadata_read
    unknown = client.get(
        f"{acr.url}/acr/v1/iotedge%2Fagent/_tags/9.9.9?api-version=2021-07-01",
        headers=bearer(token),
    )
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"errors": [{"code": "TAG_UNKNOWN", "message": "the specified tag does not exist"}]},
    )


def test_a_service_reached_under_its_real_name(
    acr_factory: Callable[..., AcrStandIn], entra: EntraStandIn
) -> None:
    service = acr_factory(reached_as="myacr.azurecr.io", tls=True)
    assert (service.name, service.public_url) == ("myacr.azurecr.io", "https://myacr.azurecr.io")
    assert service.realm == "https://myacr.azurecr.io/oauth2/token"
    verify = ssl.create_default_context(cafile=service.ca_bundle)
    with httpx.Client(trust_env=False, verify=verify) as http:
        root = http.get(f"{service.url}/v2/")  # the certificate names 127.0.0.1 too
    assert root.headers["WWW-Authenticate"].startswith(
        'Bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io"'
    )

"""The challenge flow of `RegistryAuth`, driven step by step (no network).

`auth_flow` is a generator: it yields a request, receives the response, and yields
what comes next (a token request, or the retried request), so each test plays the
registry's part by sending responses in.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Generator

import httpx
import pytest

from mirror.errors import AuthenticationError
from mirror.transport.auth import (
    IDENTITY,
    TOKEN_REQUEST,
    Challenge,
    DistributionTokens,
    RegistryAuth,
    jwt_expiry,
)
from mirror.transport.scopes import Scope, covers, needed_for, parse_scopes

REALM = "https://registry.example/token"  # the registry's own host: credentials may go
CHALLENGE = f'Bearer realm="{REALM}",service="registry.example",scope="repository:agent:pull"'

Flow = Generator[httpx.Request, httpx.Response, None]


def unauthorized(header: str = CHALLENGE) -> httpx.Response:
    return httpx.Response(401, headers={"WWW-Authenticate": header})


def token_response(token: str, **extra: object) -> httpx.Response:
    return httpx.Response(200, json={"token": token, **extra})


def get(path: str = "/v2/agent/manifests/1.5") -> httpx.Request:
    return httpx.Request("GET", f"https://registry.example{path}")


def test_challenge_parsing() -> None:
    challenge = Challenge.parse(
        'Bearer realm="https://x/oauth2/token",service="x.azurecr.io",'
        'scope="repository:a/b:pull,push repository:c:pull",error="invalid_token"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://x/oauth2/token"
    assert challenge.service == "x.azurecr.io"
    assert challenge.scopes == {
        ("repository", "a/b"): frozenset({"pull", "push"}),
        ("repository", "c"): frozenset({"pull"}),
    }
    assert Challenge.parse('Basic realm="Registry Realm"').scheme == "basic"


def test_scopes_compare_as_sets_of_actions() -> None:
    granted = parse_scopes(["repository:agent:push,pull"])
    assert covers(granted, parse_scopes(["repository:agent:pull"]))
    assert not covers(granted, parse_scopes(["repository:hub:pull"]))
    assert str(Scope.parse("repository:a/b:push,pull")) == "repository:a/b:pull,push"


def test_needed_scopes_follow_the_request() -> None:
    assert needed_for("GET", "/v2/a/b/manifests/1", "", push=False) == {
        ("repository", "a/b"): frozenset({"pull"})
    }
    assert needed_for("HEAD", "/v2/a/blobs/sha256:x", "", push=True) == {
        ("repository", "a"): frozenset({"pull", "push"})
    }
    mount = needed_for("POST", "/v2/hub/blobs/uploads/", "mount=sha256:x&from=agent", push=True)
    assert mount == {
        ("repository", "hub"): frozenset({"pull", "push"}),
        ("repository", "agent"): frozenset({"pull"}),
    }
    assert needed_for("GET", "/v2/", "", push=False) == {}


def test_bearer_challenge_fetches_a_token_and_retries_once() -> None:
    auth = RegistryAuth(DistributionTokens("user", "secret"))
    flow: Flow = auth.auth_flow(get())
    first = next(flow)
    assert "Authorization" not in first.headers

    token_request = flow.send(unauthorized())
    assert token_request.extensions[TOKEN_REQUEST]
    assert token_request.url.params["service"] == "registry.example"
    assert token_request.url.params.get_list("scope") == ["repository:agent:pull"]
    expected = "Basic " + base64.b64encode(b"user:secret").decode()
    assert token_request.headers["Authorization"] == expected

    retried = flow.send(token_response("t1"))
    assert retried.headers["Authorization"] == "Bearer t1"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))


def test_a_cached_token_is_sent_up_front_for_the_same_scope() -> None:
    auth = RegistryAuth(DistributionTokens())
    flow: Flow = auth.auth_flow(get())
    next(flow)
    flow.send(unauthorized())
    flow.send(token_response("t1"))
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))

    second: Flow = auth.auth_flow(get("/v2/agent/blobs/sha256:abc"))
    assert next(second).headers["Authorization"] == "Bearer t1"


def test_a_new_repository_gets_its_token_before_the_first_request() -> None:
    """Once the realm is known, a new scope costs a token request, not a 401."""
    auth = RegistryAuth(DistributionTokens())
    flow: Flow = auth.auth_flow(get())
    next(flow)
    flow.send(unauthorized())
    flow.send(token_response("t1"))
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))

    other: Flow = auth.auth_flow(get("/v2/hub/manifests/1.5"))
    token_request = next(other)
    assert token_request.extensions.get(TOKEN_REQUEST)
    assert token_request.url.params.get_list("scope") == ["repository:hub:pull"]
    assert other.send(token_response("t2")).headers["Authorization"] == "Bearer t2"


def test_an_expired_token_is_renewed() -> None:
    now = [1000.0]
    auth = RegistryAuth(DistributionTokens(clock=lambda: now[0]), clock=lambda: now[0])
    flow: Flow = auth.auth_flow(get())
    next(flow)
    flow.send(unauthorized())
    flow.send(token_response("t1", expires_in=300))
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))

    now[0] += 290  # within the renewal margin
    later: Flow = auth.auth_flow(get())
    assert next(later).extensions.get(TOKEN_REQUEST)


def test_insufficient_scope_is_retried_once_then_given_up() -> None:
    """A cached token the registry finds too narrow is dropped; one new token is
    fetched for the scope the challenge names; a second refusal ends the flow."""
    auth = RegistryAuth(DistributionTokens())
    flow: Flow = auth.auth_flow(get())
    next(flow)
    flow.send(unauthorized())
    flow.send(token_response("narrow"))
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))

    again: Flow = auth.auth_flow(get())
    assert next(again).headers["Authorization"] == "Bearer narrow"
    wider = CHALLENGE.replace(":pull", ":pull,push") + ',error="insufficient_scope"'
    token_request = again.send(unauthorized(wider))
    assert token_request.extensions.get(TOKEN_REQUEST)
    assert token_request.url.params.get_list("scope") == ["repository:agent:pull,push"]
    retried = again.send(token_response("wide"))
    assert retried.headers["Authorization"] == "Bearer wide"
    with pytest.raises(StopIteration):
        again.send(unauthorized(wider))


def test_basic_challenge_uses_the_login() -> None:
    auth = RegistryAuth(DistributionTokens("user", "pw"))
    flow: Flow = auth.auth_flow(get())
    next(flow)
    retried = flow.send(unauthorized('Basic realm="Registry"'))
    assert retried.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    # Later requests send Basic straight away.
    assert "Basic" in next(auth.auth_flow(get())).headers["Authorization"]


def test_basic_challenge_without_a_login_returns_the_401() -> None:
    auth = RegistryAuth(DistributionTokens())
    flow: Flow = auth.auth_flow(get())
    next(flow)
    with pytest.raises(StopIteration):
        flow.send(unauthorized('Basic realm="Registry"'))


def test_refused_credentials_raise_a_clear_error_without_the_secret() -> None:
    auth = RegistryAuth(DistributionTokens("user", "s3cr3t-value"))
    flow: Flow = auth.auth_flow(get())
    next(flow)
    flow.send(unauthorized())
    with pytest.raises(AuthenticationError) as caught:
        flow.send(httpx.Response(401))
    assert "refused the credentials" in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


def test_token_lifetime_comes_from_the_jwt_when_not_given() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 2_000_000_000}).encode()).decode()
    token = f"e30.{payload.rstrip('=')}.sig"
    assert jwt_expiry(token) == 2_000_000_000
    assert jwt_expiry("not-a-jwt") is None


def test_concurrent_requests_share_one_token_fetch() -> None:
    """Eight threads start at once against a token-protected registry; one token request."""
    tokens = []
    lock = threading.Lock()

    def registry(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":  # the token service, on the registry's host
            with lock:
                tokens.append(request)
            time.sleep(0.05)
            return token_response("shared")
        if request.headers.get("Authorization") != "Bearer shared":
            return unauthorized()
        return httpx.Response(200)

    client = httpx.Client(
        auth=RegistryAuth(DistributionTokens()), transport=httpx.MockTransport(registry)
    )
    results: list[int] = []

    def call() -> None:
        results.append(client.get("https://registry.example/v2/agent/manifests/1.5").status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8
    assert len(tokens) == 1


# --- credentials only where they belong -------------------------------------------------


def bearer(realm: str) -> str:
    return f'Bearer realm="{realm}",service="registry.example",scope="repository:agent:pull"'


@pytest.mark.parametrize(
    "realm",
    [
        "https://collector.example/token",  # another host
        "http://registry.example/token",  # plain http to a remote host
        "https://registry.example.evil/token",  # a look-alike
    ],
)
def test_credentials_are_not_sent_to_a_foreign_or_plain_realm(realm: str) -> None:
    auth = RegistryAuth(DistributionTokens("user", "s3cr3t-value"))
    flow: Flow = auth.auth_flow(get())
    next(flow)
    with pytest.raises(AuthenticationError, match="refusing to send credentials") as caught:
        flow.send(unauthorized(bearer(realm)))
    assert realm in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


def test_a_configured_realm_host_may_receive_the_credentials() -> None:
    realm = "https://tokens.example/token"
    auth = RegistryAuth(DistributionTokens("user", "pw"), realm_hosts=["tokens.example"])
    flow: Flow = auth.auth_flow(get())
    next(flow)
    token_request = flow.send(unauthorized(bearer(realm)))
    assert str(token_request.url).startswith(realm)
    assert token_request.headers["Authorization"].startswith("Basic ")


def test_anonymous_token_requests_may_go_to_any_https_realm() -> None:
    auth = RegistryAuth(DistributionTokens())
    flow: Flow = auth.auth_flow(get())
    next(flow)
    token_request = flow.send(unauthorized(bearer("https://auth.docker.example/token")))
    assert "Authorization" not in token_request.headers


def test_plain_http_realm_between_loopback_addresses_is_allowed() -> None:
    auth = RegistryAuth(DistributionTokens("user", "pw"))
    flow: Flow = auth.auth_flow(httpx.Request("GET", "http://127.0.0.1:5000/v2/agent/tags/list"))
    next(flow)
    challenge = (
        'Bearer realm="http://127.0.0.1:5001/token",service="s",scope="repository:agent:pull"'
    )
    assert flow.send(unauthorized(challenge)).url.host == "127.0.0.1"


# --- Basic under concurrency, and who was refused ----------------------------------------


def test_a_second_thread_answers_a_basic_challenge_the_first_one_already_answered() -> None:
    """Both first requests go out before either saw the challenge: the second must still
    retry with the credentials, not give up because the first set Basic mode."""
    auth = RegistryAuth(DistributionTokens("user", "pw"))
    first: Flow = auth.auth_flow(get())
    second: Flow = auth.auth_flow(get("/v2/hub/tags/list"))
    next(first)
    next(second)
    assert flow_retries(first, unauthorized('Basic realm="r"')).headers["Authorization"]
    retried = flow_retries(second, unauthorized('Basic realm="r"'))
    assert retried.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()


def flow_retries(flow: Flow, response: httpx.Response) -> httpx.Request:
    return flow.send(response)


def test_refused_basic_credentials_are_marked_with_who_was_refused() -> None:
    auth = RegistryAuth(DistributionTokens("mirror", "pw"))
    flow: Flow = auth.auth_flow(get())
    next(flow)
    flow.send(unauthorized('Basic realm="r"'))
    refused = unauthorized('Basic realm="r"')
    with pytest.raises(StopIteration):
        flow.send(refused)
    assert refused.extensions[IDENTITY] == "user mirror"


def test_a_request_with_no_credentials_is_marked_anonymous() -> None:
    auth = RegistryAuth(DistributionTokens())
    flow: Flow = auth.auth_flow(get())
    next(flow)
    refused = unauthorized('Basic realm="r"')
    with pytest.raises(StopIteration):
        flow.send(refused)
    assert refused.extensions[IDENTITY] is None

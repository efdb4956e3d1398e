"""Answering registry challenges: an `httpx.Auth` for Basic and Bearer token auth.

The flow (distribution's token spec, also what ACR speaks):

1. send the request, with a cached token when one covers the scopes it needs;
2. on `401` with `WWW-Authenticate: Bearer realm=..,service=..,scope=..`, get a token
   for that scope from the realm (through a `TokenSource`) and retry once;
3. on `401` with `Basic`, retry once with the registry's username and password.

Tokens are cached per scope until shortly before they expire, and the realm learnt
from the first challenge is used to fetch tokens up front for new scopes, so a copy
into many repositories costs one token request per repository, not a 401 per request.

Credentials go only where they belong: a realm that would receive them (Basic
credentials, an Entra token) must be on the registry's own host, or on a host the
configuration names for it (`token_realms`), over https (plain http only between
loopback addresses). Anything else is refused with an error naming the realm. An
answer that still refuses is marked with who was refused (`IDENTITY`), so that the
registry client can say "refused the credentials of ..." rather than "not authorized".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from mirror.errors import AuthenticationError
from mirror.transport.endpoint import is_loopback
from mirror.transport.scopes import covers, format_scopes, needed_for, parse_scopes

Scopes = Mapping[tuple[str, str], frozenset[str]]
TOKEN_REQUEST = "mirror.token_request"  # noqa: S105 - an extension key, not a secret
IDENTITY = "mirror.identity"  # on a refused answer: who was refused (None: nobody, anonymous)
# Registries whose token service is known to live on another host of the same operator.
KNOWN_REALMS = {
    "registry-1.docker.io": frozenset({"auth.docker.io"}),
    "index.docker.io": frozenset({"auth.docker.io"}),
}
_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_DEFAULT_LIFETIME = 60.0
_RENEW_MARGIN = 30.0


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed `WWW-Authenticate` header."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, header: str) -> Challenge:
        scheme, _, rest = header.strip().partition(" ")
        params = {
            m[1].lower(): (m[2].replace('\\"', '"') if m[2] is not None else m[3])
            for m in _PARAM.finditer(rest)
        }
        return cls(scheme.lower(), params)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> dict[tuple[str, str], frozenset[str]]:
        return parse_scopes([self.params.get("scope", "")])


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and when it stops being usable."""

    value: str
    expires_at: float

    def fresh(self, now: float) -> bool:
        return now < self.expires_at - _RENEW_MARGIN


def token_from_response(response: httpx.Response, now: float) -> Token:
    """Read `token`/`access_token` and the lifetime (`expires_in`, else the JWT's `exp`)."""
    try:
        body = response.json()
        value = body.get("token") or body.get("access_token")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not value:
        raise AuthenticationError(
            f"token service at {response.url.copy_with(query=None)} sent no token",
            status=response.status_code,
        )
    lifetime = body.get("expires_in")
    if isinstance(lifetime, int | float) and lifetime > 0:
        return Token(value, now + float(lifetime))
    expiry = jwt_expiry(value)
    return Token(value, expiry if expiry is not None else now + _DEFAULT_LIFETIME)


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, read without verifying it (the server verifies it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


class TokenSource(Protocol):
    """Turns a challenge into a token: may send requests of its own (yield them)."""

    def fetch(
        self, challenge: Challenge, scopes: tuple[str, ...]
    ) -> Generator[httpx.Request, httpx.Response, Token]: ...

    def basic(self) -> tuple[str, str] | None:
        """Username and password for a registry that asks for Basic auth, if any."""
        ...

    def describe(self) -> str | None:
        """Who the credentials are, for messages (`user mirror`); None when anonymous."""
        ...


class DistributionTokens:
    """The distribution token protocol: `GET realm?service=..&scope=..`.

    Sent with Basic credentials when there are any, anonymously otherwise; a
    `refresh_token` in the answer is kept and used (POST grant) for later scopes.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = (username, password) if username and password is not None else None
        self._clock = clock

    def basic(self) -> tuple[str, str] | None:
        if self._credentials is None:
            return None
        username, password = self._credentials
        return (username or "", password or "")

    def describe(self) -> str | None:
        return None if self._credentials is None else f"user {self._credentials[0]}"

    def fetch(
        self, challenge: Challenge, scopes: tuple[str, ...]
    ) -> Generator[httpx.Request, httpx.Response, Token]:
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params += [("scope", scope) for scope in scopes]
        request = httpx.Request("GET", challenge.realm, params=params)
        if self._credentials is not None:
            request.headers["Authorization"] = _basic_header(*self.basic() or ("", ""))
        response = yield request
        if response.status_code != 200:
            who = (
                f"the credentials of {self.describe()}" if self._credentials else "anonymous access"
            )
            raise AuthenticationError(
                f"token service {challenge.realm} refused {who} (HTTP {response.status_code})",
                status=response.status_code,
            )
        return token_from_response(response, self._clock())


def _basic_header(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class RegistryAuth(httpx.Auth):
    """Authenticates every request to one registry host (see the module docstring).

    For `httpx.Client` (mirror's clients are synchronous, shared by worker threads).
    """

    def __init__(
        self,
        source: TokenSource,
        *,
        push: bool = False,
        clock: Callable[[], float] = time.time,
        realm_hosts: Iterable[str] = (),
    ) -> None:
        self._source = source
        self._push = push
        self._clock = clock
        self._realm_hosts = frozenset(host.lower() for host in realm_hosts)
        self._bearer: Challenge | None = None
        self._basic = False
        self._open = False
        self._tokens: dict[tuple[str, ...], tuple[Scopes, Token]] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    # -- the flow -------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        needed = self._needed(request)
        yield from self._authorize(request, needed)
        response = yield request
        if response.status_code != 401:
            if "Authorization" not in request.headers:
                self._open = True
            return
        header = response.headers.get("WWW-Authenticate", "")
        challenge = Challenge.parse(header)
        if challenge.scheme == "basic":
            credentials = self._source.basic()
            sent = request.headers.get("Authorization", "").startswith("Basic ")
            if credentials is None or sent:  # none to give, or they were refused
                self._refused(response, sent)
                return
            self._basic = True  # for every thread: the first challenge is answered once
        elif challenge.scheme == "bearer" and challenge.realm:
            self._check_realm(challenge.realm, request.url)
            self._bearer = challenge
            self._forget(request.headers.get("Authorization"))
            needed = dict(needed)
            for key, actions in challenge.scopes.items():
                needed[key] = needed.get(key, frozenset()) | actions
            yield from self._refresh(needed)
        else:
            self._refused(response, "Authorization" in request.headers)
            return
        yield from self._authorize(request, needed)
        retried = yield request
        if retried.status_code == 401:
            self._refused(retried, True)

    def _refused(self, response: httpx.Response, credentialed: bool) -> None:
        """Mark a refusal with who was refused (None: the request carried nothing)."""
        response.extensions = {
            **response.extensions,
            IDENTITY: self._source.describe() if credentialed else None,
        }

    def _check_realm(self, realm: str, registry: httpx.URL) -> None:
        """Refuse to send credentials to a token realm that is not the registry's own."""
        if self._source.describe() is None:
            return  # nothing secret goes to the realm
        url = httpx.URL(realm)
        host = url.host.lower()
        known = KNOWN_REALMS.get(registry.host.lower(), frozenset())
        own = host == registry.host.lower() or host in self._realm_hosts | known
        secure = url.scheme == "https" or (
            url.scheme == "http" and is_loopback(host) and is_loopback(registry.host)
        )
        if not own:
            raise AuthenticationError(
                f"{registry.host} names the token realm {realm}, on another host: refusing to "
                "send credentials there (if that host is the registry's own token service, "
                "name it in the registry's `token_realms`)"
            )
        if not secure:
            raise AuthenticationError(
                f"{registry.host} names the token realm {realm} over plain http: refusing to "
                "send credentials there"
            )

    def _needed(self, request: httpx.Request) -> dict[tuple[str, str], frozenset[str]]:
        # The path as sent: ACR's `/acr/v1/library%2Fhello-world/...` names one
        # repository in one segment, which the decoded path would split in two.
        path, _, query = request.url.raw_path.decode("ascii", "replace").partition("?")
        return needed_for(request.method, path, query, push=self._push)

    def _authorize(
        self, request: httpx.Request, needed: Scopes
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the Authorization header: a cached token, a new one, or Basic."""
        if self._basic:
            username, password = self._source.basic() or ("", "")
            request.headers["Authorization"] = _basic_header(username, password)
            return
        if self._bearer is None:
            return
        token = self._cached(needed)
        if token is None:
            token = yield from self._refresh(needed)
        request.headers["Authorization"] = f"Bearer {token.value}"

    def _refresh(self, needed: Scopes) -> Generator[httpx.Request, httpx.Response, Token]:
        assert self._bearer is not None
        scopes = format_scopes(needed)
        cached = self._cached(needed)
        if cached is not None:
            return cached
        flow = self._source.fetch(self._bearer, scopes)
        try:
            outgoing = next(flow)
            while True:
                outgoing.extensions = {**outgoing.extensions, TOKEN_REQUEST: True}
                response = yield outgoing
                outgoing = flow.send(response)
        except StopIteration as done:
            token: Token = done.value
        self._tokens = {**self._tokens, scopes: (dict(needed), token)}  # copy: threads read it
        return token

    def _forget(self, authorization: str | None) -> None:
        """Drop the token a request was refused with (revoked, or too narrow)."""
        if authorization and authorization.startswith("Bearer "):
            value = authorization.removeprefix("Bearer ")
            self._tokens = {k: v for k, v in self._tokens.items() if v[1].value != value}

    def _cached(self, needed: Scopes) -> Token | None:
        now = self._clock()
        for granted, token in self._tokens.values():
            if token.fresh(now) and covers(granted, needed):
                return token
        return None

    # -- the driver ---------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Run `auth_flow`, reading token responses; concurrent requests wanting the same
        new token wait for the first one to get it instead of each fetching their own."""
        needed = self._needed(request)
        lock: threading.Lock | None = None
        if not self._open and self._cached(needed) is None:
            with self._guard:
                lock = self._locks.setdefault(format_scopes(needed), threading.Lock())
            lock.acquire()
        flow = self.auth_flow(request)
        try:
            outgoing = next(flow)
            while True:
                response = yield outgoing
                is_token = bool(outgoing.extensions.get(TOKEN_REQUEST))
                if is_token:
                    response.read()
                outgoing = flow.send(response)
                if lock is not None and not is_token and response.status_code != 401:
                    lock.release()  # settled: a token is cached, or none is needed
                    lock = None
        except StopIteration:
            return
        finally:
            if lock is not None:
                lock.release()

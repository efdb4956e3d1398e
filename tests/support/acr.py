"""A stand-in for Azure Container Registry (ACR), which cannot run here.

What is real: the registry. Every `/v2/...` request goes to Debian's `docker-registry`
(CNCF distribution 2.8) configured with `auth.token`: it validates the bearer JWTs this
service signs (its own RSA key, `kid` = libtrust fingerprint, listed in the registry's
`rootcertbundle`) and enforces the `pull`/`push`/`delete` actions in them itself. A
pull-only identity trying to push is refused by the registry, not by this code.

What is a stand-in (copied from recorded ACR traffic, see the project's reference notes):

- `POST /oauth2/exchange`: an Entra access token (from `tests/support/entra.py`) for an
  ACR refresh token (a JWT with `exp`, lifetime configurable).
- `/oauth2/token`: `POST` with `grant_type=refresh_token` (or `password`: an empty
  refresh token means anonymous; username/password like `docker login`) and `GET` with
  HTTP Basic (service principal id + secret, a repository-scoped token, or the null GUID
  with a refresh token) -> `{"access_token"}`, granting per requested scope the
  intersection with what the caller's roles allow. Failures are a bare 401, like ACR.
- Role assignments: `acrPull` -> pull, `acrPush` -> pull + push, `acrDelete` -> delete,
  `metadataWrite` (a custom role with `.../metadata/write`), `owner` -> everything.
- The metadata API `/acr/v1/<repo>/_tags[/<tag>]` and `/acr/v1/<repo>/_manifests/<digest>`
  (GET/PATCH, `metadata_read`/`metadata_write` checked here from the bearer token);
  attributes live in this service, digests come from the registry.
- Locks: a manifest PUT or DELETE that `writeEnabled`/`deleteEnabled` forbid is refused
  here with ACR's `405 REGISTRY_DISALLOWED_OPERATION` before it reaches the registry.
- Challenges: the registry's `WWW-Authenticate` is rewritten into ACR's form (realm on
  this service, `error="invalid_token"` when no valid token was sent).
- Mounts, as recorded from ACR: a mount (`POST .../blobs/uploads/?mount=&from=`) from the
  repository itself is answered `202` with a new upload session even when the blob is
  there, and so is a cross-repository mount unless `cross_repository_mounts` is set
  (then the registry mounts: `201`). Presence is asked with `HEAD .../blobs/<digest>`.
- Upload sessions: `open_uploads` holds every session started and neither completed
  (`PUT`, 201) nor cancelled (`DELETE`, which needs the `delete` action, as on ACR).
- Names: nested repository names arrive in `/acr/v1` paths as one `%2F`-encoded segment
  (what ACR's clients send) and are served; every request is recorded with its path as
  sent (`RequestRecord.raw_path`). `/acr/v1` errors carry ACR's body
  (`{"errors":[{"code":"TAG_UNKNOWN","message":...}]}`); failures of the token endpoints
  are a bare 401 (no body, no challenge); `counters.token_scopes` lists the scopes each
  token request asked for.
- A real name: `reached_as="myacr.azurecr.io"` makes the service the login server of
  that name (the token `service`, the realm `https://myacr.azurecr.io/oauth2/token`,
  with `tls` a certificate for it from the test CA): clients reach it by dialling
  127.0.0.1:`port` for that name (mirror's `address` setting).

Deviations that could not be avoided: `readEnabled`/`listEnabled` are stored but not
enforced; tags cannot be deleted (distribution 2.8 has no tag delete); the proxy applies
access-token expiry strictly (the registry itself allows 60 s of leeway) so that tests
can expire tokens with `expire_access_tokens()` or a short `access_token_lifetime`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import fnmatch
import hashlib
import ipaddress
import json
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.entra import (
    BackgroundServer,
    EntraApp,
    EntraStandIn,
    TestCA,
    pem_private_key,
    rsa_key,
    self_signed_certificate,
)
from tests.support.registry import Registry, free_port

ISSUER = "Azure Container Registry"
API_VERSION = "2021-07-01"
NULL_GUID = "00000000-0000-0000-0000-000000000000"

ACR_PULL = "acrPull"
ACR_PUSH = "acrPush"
ACR_DELETE = "acrDelete"
METADATA_WRITE = "metadataWrite"
OWNER = "owner"
ROLE_ACTIONS: Mapping[str, frozenset[str]] = {
    ACR_PULL: frozenset({"pull", "metadata_read"}),
    ACR_PUSH: frozenset({"pull", "push", "metadata_read"}),
    ACR_DELETE: frozenset({"delete"}),
    METADATA_WRITE: frozenset({"metadata_read", "metadata_write"}),
    OWNER: frozenset({"pull", "push", "delete", "metadata_read", "metadata_write"}),
}
# ACR refuses writes to a locked tag or manifest with this body (recorded from ACR by
# acr-cli users and by crane); 405 is the status ACR answered for a locked delete, and
# is used for a locked manifest PUT too.
DISALLOWED_STATUS = 405
DISALLOWED_BODY = {
    "errors": [
        {
            "code": "REGISTRY_DISALLOWED_OPERATION",
            "detail": {},
            "message": "The operation is disallowed on this registry, repository or image. "
            "View troubleshooting steps at https://aka.ms/acr/faq/"
            "#why-does-my-pull-or-push-request-fail-with-disallowed-operation",
        }
    ]
}
UNAUTHORIZED_MESSAGE = (
    "authentication required, visit https://aka.ms/acr/authorization for more information."
)
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<reference>[^/]+)$")
_UPLOAD_PATH = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<session>[^/]*)$")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)


def certificate_for(directory: Path, *names: str) -> tuple[Path, Path, Path]:
    """(CA bundle, certificate, key) PEM files: a server certificate for the DNS `names`
    (and 127.0.0.1) from the shared test CA, so that a client trusting the bundle
    accepts it under those names (`TestCA`'s own certificate is for localhost only)."""
    ca = TestCA.shared()
    ca_key, key = rsa_key("test-ca"), rsa_key("test-tls-server")
    now = datetime.datetime.now(datetime.UTC)
    alternatives: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alternatives.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    bundle, cert, key_file = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    bundle.write_bytes(ca.ca_certificate.public_bytes(serialization.Encoding.PEM))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(pem_private_key(key))
    return bundle, cert, key_file


def libtrust_key_id(key: rsa.RSAPublicKey) -> str:
    """The `kid` distribution expects: base32 of the first 30 bytes of SHA-256(DER key)."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


# --- scopes and identities ---------------------------------------------------------------


@dataclass(frozen=True)
class TokenScope:
    """One `type:name:actions` scope, e.g. `repository:azureiotedge-agent:pull,push`."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TokenScope | None:
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scopes(values: Iterable[str]) -> list[TokenScope]:
    """Scopes from repeated `scope` fields, each possibly several space-separated ones."""
    parsed = (TokenScope.parse(text) for value in values for text in value.split())
    return [scope for scope in parsed if scope is not None]


@dataclass(frozen=True)
class RepositoryToken:
    """An ACR token: a name, a password and a scope map (repository pattern -> actions).

    Patterns are shell-style (`azureiotedge-*`, `*`); actions are token actions
    (`pull`, `push`, `delete`, `metadata_read`, `metadata_write`).
    """

    name: str
    password: str = field(repr=False)
    scope_map: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Identity:
    """Who a token request speaks for, and what each scope may grant them."""

    kind: str  # "service_principal", "token" or "anonymous"
    name: str
    roles: frozenset[str] = frozenset()
    token: RepositoryToken | None = None

    def allowed(self, scope: TokenScope) -> frozenset[str]:
        if scope.type == "registry":
            listable = self.kind == "service_principal" and bool(self.roles)
            return frozenset({"*"}) if scope.name == "catalog" and listable else frozenset()
        if scope.type != "repository":
            return frozenset()
        if self.kind == "anonymous":
            return frozenset({"pull"})
        if self.token is not None:
            matches = (
                actions
                for pattern, actions in self.token.scope_map.items()
                if fnmatch.fnmatchcase(scope.name, pattern)
            )
            return frozenset().union(*matches)
        return frozenset().union(*(ROLE_ACTIONS.get(role, frozenset()) for role in self.roles))

    def grant(self, scope: TokenScope) -> list[str]:
        """The requested actions this identity may have (all it may have for `*`)."""
        allowed = self.allowed(scope)
        if "*" in scope.actions:
            return sorted(allowed)
        return [action for action in scope.actions if action in allowed]


# --- attributes and counters -------------------------------------------------------------


@dataclass
class Attributes:
    """ACR's `changeableAttributes` of a tag or a manifest."""

    deleteEnabled: bool = True
    writeEnabled: bool = True
    readEnabled: bool = True
    listEnabled: bool = True

    def update(self, changes: Mapping[str, object]) -> None:
        names = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in names or not isinstance(value, bool):
                raise ValueError(f"not a changeable attribute: {name}={value!r}")
            setattr(self, name, value)

    @property
    def locked(self) -> bool:
        return not (self.writeEnabled and self.deleteEnabled)


@dataclass(frozen=True)
class RequestRecord:
    """One request the ACR service answered."""

    method: str
    path: str
    query: str
    status: int
    raw_path: str = ""  # the path as sent, percent-encoding kept (`library%2Fhello`)


@dataclass
class AcrCounters:
    """What the ACR service has been asked, for assertions such as 'one exchange per RT'."""

    exchanges: int = 0
    exchanges_refused: int = 0
    tokens: int = 0
    tokens_refused: int = 0
    tokens_by_grant: Counter[str] = field(default_factory=Counter)
    token_scopes: list[list[str]] = field(default_factory=list)  # per token request
    requests: list[RequestRecord] = field(default_factory=list)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests with this method and/or whose path starts with `path`."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path.startswith(path))
        )

    def reset(self) -> None:
        self.exchanges = self.exchanges_refused = self.tokens = self.tokens_refused = 0
        self.tokens_by_grant.clear()
        self.token_scopes.clear()
        self.requests.clear()


RequestHook = Callable[[RequestRecord], None]


class _Recorder:
    """ASGI middleware appending a `RequestRecord` per HTTP request and calling hooks."""

    def __init__(self, app: ASGIApp, counters: AcrCounters, hooks: list[RequestHook]) -> None:
        self.app = app
        self.counters = counters
        self.hooks = hooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._record(scope, int(message["status"]))
            await send(message)

        await self.app(scope, receive, recording_send)

    def _record(self, scope: Scope, status: int) -> None:
        """Record before the response leaves, so a client that got it also sees the count."""
        query = scope.get("query_string", b"").decode()
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode().partition("?")[0]
        record = RequestRecord(scope["method"], scope["path"], query, status, raw_path)
        self.counters.requests.append(record)
        for hook in list(self.hooks):
            hook(record)


def _error(status: int, code: str, message: str, detail: object = None) -> Response:
    entry: dict[str, object] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return JSONResponse({"errors": [entry]}, status_code=status)


def _acr_unauthorized_body(content: bytes) -> bytes:
    """distribution's UNAUTHORIZED body as ACR words it (ACR's message, no `Class`)."""
    try:
        document = json.loads(content)
        for error in document["errors"]:
            if error.get("code") == "UNAUTHORIZED":
                error["message"] = UNAUTHORIZED_MESSAGE
                for entry in error.get("detail") or []:
                    entry.pop("Class", None)
    except (ValueError, KeyError, TypeError, AttributeError):
        return content
    return json.dumps(document, separators=(",", ":")).encode()


def _bare_401() -> Response:
    return Response(status_code=401)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _is_digest(reference: str) -> bool:
    return reference.startswith("sha256:")


def _form(body: bytes, query: str) -> dict[str, list[str]]:
    """Query and urlencoded form fields, every value kept (`scope` may repeat)."""
    result: dict[str, list[str]] = {}
    for text in (query, body.decode(errors="replace")):
        for name, value in parse_qsl(text, keep_blank_values=True):
            result.setdefault(name, []).append(value)
    return result


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except ValueError:
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


# --- the service -------------------------------------------------------------------------


class AcrStandIn:
    """A real token-auth registry behind ACR's token, metadata and lock behaviour.

    Configure identities with `assign` (Entra apps and their roles) and `add_token`
    (repository-scoped tokens) before or after `start()`. `url` is the registry
    endpoint clients use; `name` is the login server / token `service`.

    `reached_as` (`myacr.azurecr.io`) is the name clients reach the service under while
    dialling 127.0.0.1:`port`: it becomes the login server (unless `name` says
    otherwise), the realm's host and, with `tls`, the certificate's name.
    `cross_repository_mounts` lets the registry answer cross-repository mounts (201);
    by default they get 202 and a new session, as recorded from ACR.
    """

    def __init__(
        self,
        root: Path,
        entra: EntraStandIn,
        *,
        name: str | None = None,
        anonymous_pull: bool = False,
        refresh_token_lifetime: int = 3 * 3600,
        access_token_lifetime: int = 75 * 60,
        tls: bool = False,
        reached_as: str | None = None,
        cross_repository_mounts: bool = False,
    ) -> None:
        self.root = root
        self.reached_as = reached_as
        self.cross_repository_mounts = cross_repository_mounts
        # upload sessions started and neither completed nor cancelled: session id -> repo
        self.open_uploads: dict[str, str] = {}
        self.entra = entra
        self.anonymous_pull = anonymous_pull
        self.refresh_token_lifetime = refresh_token_lifetime
        self.access_token_lifetime = access_token_lifetime
        self.counters = AcrCounters()
        # Called (on the server's thread) after each request is answered, e.g. to expire
        # the refresh tokens after the tenth blob upload: `acr.hooks.append(callback)`.
        self.hooks: list[RequestHook] = []
        self.role_assignments: dict[str, set[str]] = {}
        self.tokens: dict[str, RepositoryToken] = {}
        self.tag_attributes: dict[tuple[str, str], Attributes] = {}
        self.manifest_attributes: dict[tuple[str, str], Attributes] = {}
        self._times: dict[tuple[str, str], tuple[str, str]] = {}
        self._issued: dict[str, set[str]] = {"refresh_token": set(), "access_token": set()}
        self._revoked: set[str] = set()
        self._key = rsa_key("acr-token-signing")
        self._kid = libtrust_key_id(self._key.public_key())
        tls_files = None
        if tls:
            tls_files = (
                certificate_for(root / "tls", reached_as.split(":")[0])
                if reached_as
                else TestCA.shared().write(root / "tls")
            )
        self.ca_bundle = tls_files[0] if tls_files else None
        self._server = BackgroundServer(
            _Recorder(self._app(), self.counters, self.hooks),
            tls=(tls_files[1], tls_files[2]) if tls_files else None,
        )
        self.name = name or reached_as or f"127.0.0.1:{self._server.port}"
        self.registry = self._registry()
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- configuration and lifecycle ---

    @property
    def url(self) -> str:
        """The registry endpoint (`http://127.0.0.1:<port>`, https with `tls=True`)."""
        return self._server.url

    @property
    def port(self) -> int:
        """The port the service listens on (on 127.0.0.1)."""
        return self._server.port

    @property
    def public_url(self) -> str:
        """The endpoint under its `reached_as` name (`url` without one)."""
        if self.reached_as is None:
            return self.url
        return f"{self.url.partition(':')[0]}://{self.reached_as}"

    @property
    def realm(self) -> str:
        return f"{self.public_url}/oauth2/token"

    def assign(self, app: EntraApp, *roles: str) -> EntraApp:
        """Give an Entra app (service principal) roles on this registry."""
        unknown = set(roles) - set(ROLE_ACTIONS)
        if unknown:
            raise ValueError(f"unknown roles {unknown}; known: {sorted(ROLE_ACTIONS)}")
        self.role_assignments.setdefault(app.client_id, set()).update(roles)
        return app

    def unassign(self, app: EntraApp, *roles: str) -> None:
        self.role_assignments.get(app.client_id, set()).difference_update(roles)

    def add_token(self, name: str, scope_map: Mapping[str, Iterable[str]]) -> RepositoryToken:
        """A repository-scoped token, e.g. `add_token("pull", {"*": ["pull", "metadata_read"]})`."""
        token = RepositoryToken(
            name,
            secrets.token_urlsafe(24),
            {pattern: frozenset(actions) for pattern, actions in scope_map.items()},
        )
        self.tokens[name] = token
        return token

    def start(self) -> AcrStandIn:
        self.registry.start()
        self._server.start()
        return self

    def stop(self) -> None:
        if self._client is not None and self._loop is not None and self._loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop)
            closing.result(timeout=5)
        self._client = self._loop = None
        self._server.stop()
        self.registry.stop()

    def _registry_client(self) -> httpx.AsyncClient:
        """The client to the registry, made on the server's event loop at first use."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=60, trust_env=False)
            self._loop = asyncio.get_running_loop()
        return self._client

    def _registry(self) -> Registry:
        bundle = self.root / "token-signer.pem"
        self.root.mkdir(parents=True, exist_ok=True)
        certificate = self_signed_certificate(self._key, "acr stand-in token signer")
        bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        port = free_port()
        auth = {
            "realm": self.realm,
            "service": self.name,
            "issuer": ISSUER,
            "rootcertbundle": str(bundle),
        }
        http = {"addr": f"127.0.0.1:{port}", "secret": "acr-stand-in", "relativeurls": True}
        return Registry(
            self.root / "registry",
            name="acr",
            port=port,
            extra_config={"auth": {"token": auth}, "http": http},
        )

    # --- controls for tests ---

    def attributes(self, repository: str, reference: str) -> Attributes:
        """The stored attributes of a tag, or of a manifest when `reference` is a digest."""
        store = self.manifest_attributes if _is_digest(reference) else self.tag_attributes
        return store.setdefault((repository, reference), Attributes())

    def lock(self, repository: str, reference: str, *, allow_delete: bool = False) -> None:
        """writeEnabled=false and deleteEnabled=`allow_delete` on a tag (or a digest)."""
        self.attributes(repository, reference).update(
            {"writeEnabled": False, "deleteEnabled": allow_delete}
        )

    def unlock(self, repository: str, reference: str) -> None:
        self.attributes(repository, reference).update({"writeEnabled": True, "deleteEnabled": True})

    def expire_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused from now on (as if expired)."""
        self._revoked |= self._issued["refresh_token"]

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (as if expired)."""
        self._revoked |= self._issued["access_token"]

    def access_token(self, identity: Identity, scopes: Iterable[TokenScope]) -> str:
        """Sign an access token as `/oauth2/token` would (also handy in tests)."""
        access = [
            {"type": scope.type, "name": scope.name, "actions": identity.grant(scope)}
            for scope in scopes
        ]
        return self._sign(
            "access_token", identity.name, self.access_token_lifetime, {"access": access}
        )

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this service issued and still honours, else None."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=self.name,
                issuer=ISSUER,
                options={"require": ["exp", "jti"]},
            )
        except jwt.InvalidTokenError:
            return None
        return None if claims["jti"] in self._revoked else claims

    # --- tokens ---

    def _sign(self, grant: str, subject: str, lifetime: int, extra: dict[str, Any]) -> str:
        now = int(time.time())
        jti = str(uuid.uuid4())
        self._issued[grant].add(jti)
        claims = {
            "jti": jti,
            "sub": subject,
            "iss": ISSUER,
            "aud": self.name,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "grant_type": grant,
            "version": "1.0",
            **extra,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    def _service_principal(self, client_id: str) -> Identity:
        roles = frozenset(self.role_assignments.get(client_id, ()))
        return Identity("service_principal", client_id, roles)

    def _from_refresh_token(self, token: str) -> Identity | None:
        claims = self.claims(token)
        if claims is None or claims.get("grant_type") != "refresh_token":
            return None
        return self._service_principal(str(claims["appid"]))

    def _from_password(self, username: str, password: str) -> Identity | None:
        if username == NULL_GUID:
            return self._from_refresh_token(password)
        if self.entra.authenticate(username, password) is not None:
            return self._service_principal(username)
        token = self.tokens.get(username)
        if token is not None and secrets.compare_digest(token.password, password):
            return Identity("token", token.name, token=token)
        return None

    def _anonymous(self) -> Identity | None:
        return Identity("anonymous", "anonymous") if self.anonymous_pull else None

    def _identify(self, request: Request, form: Mapping[str, list[str]]) -> Identity | None:
        def first(name: str) -> str | None:
            return form.get(name, [None])[0]

        if request.method == "GET":
            basic = _basic_credentials(request.headers.get("authorization"))
            return self._from_password(*basic) if basic else self._anonymous()
        grant = first("grant_type")
        if grant == "refresh_token":
            return self._from_refresh_token(first("refresh_token") or "")
        if grant == "password" and first("username") is not None:
            return self._from_password(first("username") or "", first("password") or "")
        if grant == "password" and not first("refresh_token"):
            return self._anonymous()
        return None

    # --- the ASGI app ---

    def _app(self) -> Starlette:
        proxy_methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(
            routes=[
                Route("/oauth2/exchange", self._exchange, methods=["POST"]),
                Route("/oauth2/token", self._token, methods=["GET", "POST"]),
                Route("/acr/v1/{repo:path}/_tags/{tag}", self._tag, methods=["GET", "PATCH"]),
                Route("/acr/v1/{repo:path}/_tags", self._tags, methods=["GET"]),
                Route(
                    "/acr/v1/{repo:path}/_manifests/{digest}",
                    self._manifest,
                    methods=["GET", "PATCH"],
                ),
                Route("/v2/{rest:path}", self._proxy, methods=proxy_methods),
            ],
        )

    async def _exchange(self, request: Request) -> Response:
        form = _form(await request.body(), "")
        entra_token = form.get("access_token", [""])[0]
        claims = self.entra.verify(entra_token)
        valid = (
            claims is not None
            and form.get("grant_type") == ["access_token"]
            and form.get("service") == [self.name]
        )
        if not valid or claims is None:
            self.counters.exchanges_refused += 1
            return _bare_401()
        self.counters.exchanges += 1
        extra = {"appid": claims["appid"], "tenant": claims["tid"], "oid": claims.get("oid")}
        refresh = self._sign("refresh_token", claims["oid"], self.refresh_token_lifetime, extra)
        return JSONResponse({"refresh_token": refresh})

    async def _token(self, request: Request) -> Response:
        self.counters.tokens += 1
        form = _form(await request.body(), request.url.query)
        basic = "authorization" in request.headers
        default = ("basic" if basic else "anonymous") if request.method == "GET" else "none"
        grant = form.get("grant_type", [default])[0]
        self.counters.tokens_by_grant[grant] += 1
        self.counters.token_scopes.append(form.get("scope", []))
        identity = self._identify(request, form)
        if identity is None or form.get("service", [None])[0] != self.name:
            self.counters.tokens_refused += 1
            return _bare_401()
        token = self.access_token(identity, parse_scopes(form.get("scope", [])))
        return JSONResponse({"access_token": token})

    # --- metadata API ---

    def _challenge(self, scope: str | None, error: str) -> str:
        params = [f'realm="{self.realm}"', f'service="{self.name}"']
        if scope:
            params.append(f'scope="{scope}"')
        params.append(f'error="{error}"')
        return "Bearer " + ",".join(params)

    def _metadata_denied(self, request: Request, repository: str, action: str) -> Response | None:
        claims = self.claims(_bearer(request.headers.get("authorization")) or "")
        granted = self._granted(claims, repository) if claims else frozenset()
        if action in granted:
            return None
        error = "insufficient_scope" if claims else "invalid_token"
        detail = [{"Type": "repository", "Name": repository, "Action": action}]
        response = _error(401, "UNAUTHORIZED", UNAUTHORIZED_MESSAGE, detail)
        response.headers["WWW-Authenticate"] = self._challenge(
            f"repository:{repository}:{action}", error
        )
        return response

    @staticmethod
    def _granted(claims: Mapping[str, Any], repository: str) -> frozenset[str]:
        return frozenset(
            action
            for entry in claims.get("access", [])
            if entry.get("type") == "repository" and entry.get("name") == repository
            for action in entry.get("actions", [])
        )

    async def _registry_get(self, method: str, repository: str, path: str) -> httpx.Response:
        scope = TokenScope("repository", repository, ("pull",))
        token = self.access_token(Identity("service_principal", "acr", frozenset({OWNER})), [scope])
        headers = {"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES}
        url = f"{self.registry.url}/v2/{repository}/{path}"
        return await self._registry_client().request(method, url, headers=headers)

    async def _resolve(self, repository: str, reference: str) -> httpx.Response | None:
        """The registry's HEAD of a manifest, or None when it is unknown."""
        response = await self._registry_get("HEAD", repository, f"manifests/{reference}")
        return response if response.status_code == 200 else None

    async def _tag_names(self, repository: str) -> list[str]:
        response = await self._registry_get("GET", repository, "tags/list?n=10000")
        if response.status_code != 200:
            return []
        return sorted(response.json().get("tags") or [])

    def _times_of(self, repository: str, reference: str) -> tuple[str, str]:
        return self._times.setdefault((repository, reference), (_now_iso(), _now_iso()))

    def _tag_json(self, repository: str, tag: str, digest: str) -> dict[str, Any]:
        created, updated = self._times_of(repository, tag)
        return {
            "name": tag,
            "digest": digest,
            "createdTime": created,
            "lastUpdateTime": updated,
            "signed": False,
            "changeableAttributes": asdict(self.attributes(repository, tag)),
        }

    async def _patch_body(self, request: Request) -> dict[str, object] | Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "BAD_REQUEST", "the request body is not a JSON object")
        return body

    async def _tag(self, request: Request) -> Response:
        repository, tag = request.path_params["repo"], request.path_params["tag"]
        action = "metadata_write" if request.method == "PATCH" else "metadata_read"
        denied = self._metadata_denied(request, repository, action)
        if denied is not None:
            return denied
        head = await self._resolve(repository, tag)
        if head is None:
            return _error(404, "TAG_UNKNOWN", "the specified tag does not exist")
        if request.method == "PATCH":
            applied = await self._apply_patch(request, self.attributes(repository, tag))
            if applied is not None:
                return applied
        digest = head.headers["Docker-Content-Digest"]
        tag_json = self._tag_json(repository, tag, digest)
        return JSONResponse({"registry": self.name, "imageName": repository, "tag": tag_json})

    async def _apply_patch(self, request: Request, attributes: Attributes) -> Response | None:
        body = await self._patch_body(request)
        if isinstance(body, Response):
            return body
        try:
            attributes.update(body)
        except ValueError as error:
            return _error(400, "BAD_REQUEST", str(error))
        return None

    async def _tags(self, request: Request) -> Response:
        repository = request.path_params["repo"]
        denied = self._metadata_denied(request, repository, "metadata_read")
        if denied is not None:
            return denied
        entries = []
        for tag in await self._tag_names(repository):
            head = await self._resolve(repository, tag)
            if head is not None:
                entries.append(
                    self._tag_json(repository, tag, head.headers["Docker-Content-Digest"])
                )
        if not entries:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry", {})
        return self._tag_page(request, repository, entries)

    def _tag_page(
        self, request: Request, repository: str, entries: list[dict[str, Any]]
    ) -> Response:
        params = request.query_params
        order = params.get("orderby", "")
        if order in ("timedesc", "timeasc"):
            entries.sort(
                key=lambda e: (e["lastUpdateTime"], e["name"]), reverse=order == "timedesc"
            )
        last = params.get("last")
        if last is not None:
            names = [e["name"] for e in entries]
            entries = entries[names.index(last) + 1 :] if last in names else []
        size = int(params.get("n", "100"))
        page, more = entries[:size], len(entries) > size
        body = {"registry": self.name, "imageName": repository, "tags": page}
        response = JSONResponse(body)
        if more:
            query = f"last={quote(page[-1]['name'])}&n={size}&orderby={order}"
            response.headers["Link"] = f'</acr/v1/{repository}/_tags?{query}>; rel="next"'
        return response

    async def _manifest(self, request: Request) -> Response:
        repository, digest = request.path_params["repo"], request.path_params["digest"]
        action = "metadata_write" if request.method == "PATCH" else "metadata_read"
        denied = self._metadata_denied(request, repository, action)
        if denied is not None:
            return denied
        head = await self._resolve(repository, digest) if _is_digest(digest) else None
        if head is None:
            return _error(404, "MANIFEST_UNKNOWN", "the specified manifest does not exist")
        if request.method == "PATCH":
            applied = await self._apply_patch(request, self.attributes(repository, digest))
            if applied is not None:
                return applied
        manifest = await self._manifest_json(repository, digest, head)
        return JSONResponse({"registry": self.name, "imageName": repository, "manifest": manifest})

    async def _manifest_json(
        self, repository: str, digest: str, head: httpx.Response
    ) -> dict[str, Any]:
        tags = [
            tag
            for tag in await self._tag_names(repository)
            if (found := await self._resolve(repository, tag))
            and found.headers["Docker-Content-Digest"] == digest
        ]
        created, updated = self._times_of(repository, digest)
        return {
            "digest": digest,
            "imageSize": int(head.headers.get("Content-Length", "0")),
            "createdTime": created,
            "lastUpdateTime": updated,
            "mediaType": head.headers.get("Content-Type"),
            "tags": tags,
            "changeableAttributes": asdict(self.attributes(repository, digest)),
        }

    # --- the registry proxy ---

    async def _proxy(self, request: Request) -> Response:
        client = self._registry_client()
        token = _bearer(request.headers.get("authorization"))
        claims = self.claims(token) if token else None
        body = await request.body() if _MANIFEST_PATH.match(request.url.path) else None
        refusal = await self._lock_refusal(request, claims, body)
        if refusal is not None:
            return refusal
        upstream = client.build_request(
            request.method,
            self._upstream_url(request, self._upstream_query(request)),
            headers=self._upstream_headers(request, honoured=token is None or claims is not None),
            content=self._upstream_body(request, body),
        )
        response = await client.send(upstream, stream=True)
        self._note_manifest_write(request, response)
        self._note_upload(request, response)
        if response.status_code == 401:
            return await self._unauthorized(response)
        proxied = StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            background=BackgroundTask(response.aclose),
        )
        proxied.raw_headers = self._downstream_headers(response)
        return proxied

    async def _unauthorized(self, response: httpx.Response) -> Response:
        """The registry's 401 with ACR's challenge and error body (buffered: it is small)."""
        body = _acr_unauthorized_body(await response.aread())
        await response.aclose()
        headers = [(k, v) for k, v in self._downstream_headers(response) if k != b"content-length"]
        answer = Response(body, status_code=401)
        answer.raw_headers = [*headers, (b"content-length", str(len(body)).encode())]
        return answer

    def _upstream_url(self, request: Request, query: str) -> str:
        """The registry URL for a request; `library%2Fhello` reaches it as `library/hello`."""
        path = quote(request.url.path, safe="/:@")
        return self.registry.url + path + (f"?{query}" if query else "")

    def _upstream_query(self, request: Request) -> str:
        """The query the registry gets: a mount ACR would not make loses `mount`/`from`
        (a plain upload start, answered 202 with a new session, as ACR answers it)."""
        query = bytes(request.scope.get("query_string", b"")).decode()
        match = _UPLOAD_PATH.match(request.url.path)
        if request.method != "POST" or match is None or match["session"]:
            return query
        fields = parse_qsl(query, keep_blank_values=True)
        sources = [value for name, value in fields if name == "from"]
        if not any(name == "mount" for name, _ in fields):
            return query
        if self.cross_repository_mounts and sources and sources[0] != match["repo"]:
            return query
        return urlencode([(name, value) for name, value in fields if name not in ("mount", "from")])

    @staticmethod
    def _upstream_headers(request: Request, *, honoured: bool) -> list[tuple[bytes, bytes]]:
        """The client's headers, without hop-by-hop ones; without a token it is refused here.

        A token this service no longer honours (revoked or past `exp`, which the registry
        would still accept for 60 s) is dropped, so the registry answers with a challenge.
        """
        dropped = _HOP_BY_HOP if honoured else _HOP_BY_HOP | {"authorization"}
        return [(k, v) for k, v in request.headers.raw if k.decode().lower() not in dropped]

    @staticmethod
    def _upstream_body(request: Request, body: bytes | None) -> bytes | AsyncIterator[bytes] | None:
        if body is not None:
            return body
        if request.method in ("POST", "PUT", "PATCH"):
            return request.stream()
        return None

    def _downstream_headers(self, response: httpx.Response) -> list[tuple[bytes, bytes]]:
        headers = []
        for key, raw in response.headers.raw:
            name, value = key.decode().lower(), raw.decode()
            if name in _HOP_BY_HOP:
                continue
            if name == "www-authenticate":
                value = self._rewrite_challenge(value)
            elif name == "location" and value.startswith(self.registry.url):
                value = value.replace(self.registry.url, self.url, 1)
            headers.append((name.encode(), value.encode()))
        return headers

    def _rewrite_challenge(self, header: str) -> str:
        """The registry's challenge in ACR's form: our realm, and always an `error`."""
        params = dict(_CHALLENGE_PARAM.findall(header))
        return self._challenge(params.get("scope"), params.get("error", "invalid_token"))

    async def _lock_refusal(
        self, request: Request, claims: Mapping[str, Any] | None, body: bytes | None
    ) -> Response | None:
        """ACR's 405 for a manifest PUT/DELETE its locks forbid (only for callers allowed to)."""
        match = _MANIFEST_PATH.match(request.url.path)
        if match is None or claims is None or request.method not in ("PUT", "DELETE"):
            return None
        repository, reference = match["repo"], match["reference"]
        needed = "push" if request.method == "PUT" else "delete"
        if needed not in self._granted(claims, repository):
            return None  # the registry refuses it with a challenge
        if request.method == "PUT":
            locked = self._put_locked(repository, reference, body or b"")
        else:
            locked = await self._delete_locked(repository, reference)
        return JSONResponse(DISALLOWED_BODY, status_code=DISALLOWED_STATUS) if locked else None

    def _put_locked(self, repository: str, reference: str, body: bytes) -> bool:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        locks = [self.manifest_attributes.get((repository, digest))]
        if not _is_digest(reference):
            locks.append(self.tag_attributes.get((repository, reference)))
        return any(lock is not None and not lock.writeEnabled for lock in locks)

    async def _delete_locked(self, repository: str, reference: str) -> bool:
        if not _is_digest(reference):
            lock = self.tag_attributes.get((repository, reference))
            return lock is not None and lock.locked
        own = self.manifest_attributes.get((repository, reference))
        if own is not None and own.locked:
            return True
        for (repo, tag), lock in list(self.tag_attributes.items()):
            if repo == repository and lock.locked:
                head = await self._resolve(repository, tag)
                if head is not None and head.headers["Docker-Content-Digest"] == reference:
                    return True
        return False

    def _note_upload(self, request: Request, response: httpx.Response) -> None:
        """Keep `open_uploads`: sessions started (202) and not yet completed or cancelled."""
        match = _UPLOAD_PATH.match(request.url.path)
        if match is None:
            return
        if request.method == "POST" and response.status_code == 202:
            location = response.headers.get("Location", "")
            started = _UPLOAD_PATH.match(httpx.URL(location).path)
            if started is not None and started["session"]:
                self.open_uploads[started["session"]] = match["repo"]
        elif request.method in ("PUT", "DELETE") and response.status_code in (201, 204):
            self.open_uploads.pop(match["session"], None)

    def _note_manifest_write(self, request: Request, response: httpx.Response) -> None:
        match = _MANIFEST_PATH.match(request.url.path)
        if match is None:
            return
        repository, reference = match["repo"], match["reference"]
        if request.method == "PUT" and response.status_code == 201:
            now = _now_iso()
            created, _ = self._times.get((repository, reference), (now, now))
            self._times[(repository, reference)] = (created, now)
            digest = response.headers.get("Docker-Content-Digest", reference)
            self._times.setdefault((repository, digest), (now, now))
        elif request.method == "DELETE" and response.status_code == 202:
            self.manifest_attributes.pop((repository, reference), None)
            self._times.pop((repository, reference), None)

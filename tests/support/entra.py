"""A stand-in for Microsoft Entra ID, which cannot run here, plus the local TLS it needs.

What it provides:

- `EntraStandIn`: one tenant with registered applications (service principals with a
  client secret). It mints Entra-style access tokens (RS256 JWTs with `aud`, `iss`,
  `tid`, `oid`, `appid`) with its own signing key, and verifies them for the ACR
  stand-in's `/oauth2/exchange`.
- Its HTTPS endpoint (`start()`): the OpenID configuration document MSAL fetches and
  the `/<tenant>/oauth2/v2.0/token` client-credentials grant, so that azure-identity's
  real `ClientSecretCredential(tenant_id, client_id, secret, authority=entra.authority,
  disable_instance_discovery=True, connection_verify=entra.ca_bundle)` runs its own code
  path against it.
- `EntraCredential`: an in-process `TokenCredential` that tests inject instead, minting
  the same tokens and counting calls.
- `TestCA` (a self-signed certificate authority for 127.0.0.1) and `BackgroundServer`
  (uvicorn serving an ASGI app from a daemon thread), shared with `tests/support/acr.py`.

Nothing here is Entra's real code: only the token formats and endpoint shapes are copied.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import uvicorn
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

ACR_AUDIENCE = "https://containerregistry.azure.net"
ACR_SCOPE = f"{ACR_AUDIENCE}/.default"
_ONE_DAY = datetime.timedelta(days=1)


# --- keys and certificates ---------------------------------------------------------------


@functools.cache
def rsa_key(purpose: str) -> rsa.RSAPrivateKey:
    """One RSA key per purpose per test process (generating keys is the slow part)."""
    del purpose  # only the cache key
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_private_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    """A certificate for `key`, valid from yesterday for a year (e.g. a token signer)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + 365 * _ONE_DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class TestCA:
    """A certificate authority and one server certificate for 127.0.0.1 and localhost."""

    __test__ = False  # not a pytest test class

    ca_certificate: x509.Certificate
    server_certificate: x509.Certificate
    server_key: rsa.RSAPrivateKey

    @classmethod
    @functools.cache
    def shared(cls) -> TestCA:
        """The process-wide test CA (created once)."""
        ca_key = rsa_key("test-ca")
        ca = self_signed_certificate(ca_key, "mirror test CA")
        server_key = rsa_key("test-tls-server")
        return cls(ca, _server_certificate(ca, ca_key, server_key), server_key)

    def write(self, directory: Path) -> tuple[Path, Path, Path]:
        """Write (CA bundle, server certificate, server key) PEM files into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        bundle, cert, key = directory / "ca.pem", directory / "server.pem", directory / "server.key"
        bundle.write_bytes(self.ca_certificate.public_bytes(serialization.Encoding.PEM))
        cert.write_bytes(self.server_certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(pem_private_key(self.server_key))
        return bundle, cert, key


def _server_certificate(
    ca: x509.Certificate, ca_key: rsa.RSAPrivateKey, key: rsa.RSAPrivateKey
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + 30 * _ONE_DAY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


# --- serving an ASGI app from a thread ---------------------------------------------------


class BackgroundServer:
    """uvicorn serving `app` on 127.0.0.1 (a port chosen at construction) in a daemon thread."""

    def __init__(self, app: ASGIApp, *, tls: tuple[Path, Path] | None = None) -> None:
        self.app = app
        self.tls = tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        certfile, keyfile = self.tls or (None, None)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            server_header=False,
            date_header=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server for {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=2)
            # An idle TLS keep-alive connection can hold a graceful shutdown for long.
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None
        self.sock.close()


# --- the tenant --------------------------------------------------------------------------


@dataclass(frozen=True)
class EntraApp:
    """A registered application (service principal) with one client secret."""

    name: str
    client_id: str
    secret: str = field(repr=False)
    object_id: str


@dataclass
class EntraCounters:
    """Token requests the HTTPS endpoint answered (successful or not) and discovery fetches."""

    token_requests: int = 0
    tokens_issued: int = 0
    discovery_requests: int = 0


class EntraStandIn:
    """One Entra tenant: applications, token minting and verification, an HTTPS endpoint."""

    def __init__(self, root: Path, *, token_lifetime: int = 3600) -> None:
        self.root = root
        self.tenant_id = str(uuid.uuid4())
        self.token_lifetime = token_lifetime
        self.key = rsa_key("entra-signing")
        self.key_id = "entra-test-key"
        self.apps: dict[str, EntraApp] = {}
        self.counters = EntraCounters()
        self._server: BackgroundServer | None = None
        self.ca_bundle: Path | None = None

    @property
    def issuer(self) -> str:
        """The issuer of v1.0 access tokens, which ACR accepts."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def authority(self) -> str:
        """The `authority` to give azure-identity (only after `start()`)."""
        if self._server is None:
            raise RuntimeError("the Entra HTTPS endpoint is not started")
        return self._server.url

    def register(self, name: str) -> EntraApp:
        app = EntraApp(name, str(uuid.uuid4()), secrets.token_urlsafe(24), str(uuid.uuid4()))
        self.apps[app.client_id] = app
        return app

    def authenticate(self, client_id: str, secret: str) -> EntraApp | None:
        """The app if `secret` is its client secret (compared in constant time)."""
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(app.secret, secret):
            return None
        return app

    def mint(self, app: EntraApp, *, lifetime: int | None = None) -> tuple[str, int]:
        """An access token for ACR's audience as `app`, and its expiry (epoch seconds)."""
        now = int(time.time())
        expires = now + (self.token_lifetime if lifetime is None else lifetime)
        claims = {
            "aud": ACR_AUDIENCE,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "appid": app.client_id,
            "appidacr": "1",
            "idtyp": "app",
            "oid": app.object_id,
            "sub": app.object_id,
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.key_id})
        return token, expires

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this tenant issued for ACR, or None (bad, expired, foreign)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key.public_key(),
                algorithms=["RS256"],
                audience=ACR_AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "tid"]},
            )
        except jwt.InvalidTokenError:
            return None
        return claims if claims.get("tid") == self.tenant_id else None

    def credential(self, app: EntraApp) -> EntraCredential:
        return EntraCredential(self, app)

    # --- the HTTPS endpoint ---

    def start(self) -> EntraStandIn:
        self.ca_bundle, cert, key = TestCA.shared().write(self.root / "tls")
        self._server = BackgroundServer(self._app(), tls=(cert, key))
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration
                ),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
                Route("/{tenant}/discovery/v2.0/keys", self._keys),
            ]
        )

    async def _openid_configuration(self, request: Request) -> Response:
        self.counters.discovery_requests += 1
        tenant = request.path_params["tenant"]
        if tenant != self.tenant_id:
            return _aad_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
        base = f"{self.authority}/{tenant}"
        return JSONResponse(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
            }
        )

    async def _keys(self, request: Request) -> Response:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": self.key_id, "use": "sig"}]})

    async def _token(self, request: Request) -> Response:
        self.counters.token_requests += 1
        form = dict(parse_qsl((await request.body()).decode()))
        if request.path_params["tenant"] != self.tenant_id:
            return _aad_error(400, "invalid_request", "AADSTS90002: Tenant not found.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", "AADSTS70003: unsupported grant.")
        app = self.authenticate(form.get("client_id", ""), form.get("client_secret", ""))
        if app is None:
            return _aad_error(
                401, "invalid_client", "AADSTS7000215: Invalid client secret provided."
            )
        if ACR_SCOPE not in form.get("scope", "").split():
            return _aad_error(400, "invalid_scope", "AADSTS70011: The provided scope is invalid.")
        token, expires = self.mint(app)
        self.counters.tokens_issued += 1
        lifetime = expires - int(time.time())
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }
        )


def _aad_error(status: int, error: str, description: str) -> Response:
    return JSONResponse(
        {
            "error": error,
            "error_description": description,
            "error_codes": [int(description.split(":", maxsplit=1)[0].removeprefix("AADSTS"))],
        },
        status_code=status,
    )


class EntraCredential:
    """An azure-core `TokenCredential` (and `SupportsTokenInfo`) for one app, counting calls.

    `calls` counts every `get_token`/`get_token_info` call; a client that caches the ACR
    refresh token calls it once per refresh-token lifetime.
    """

    def __init__(self, entra: EntraStandIn, app: EntraApp) -> None:
        self.entra = entra
        self.app = app
        self.calls = 0
        self.scopes: list[tuple[str, ...]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        token, expires = self._mint(scopes)
        return AccessToken(token, expires)

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        token, expires = self._mint(scopes)
        return AccessTokenInfo(token, expires)

    def close(self) -> None:
        """Nothing to release (part of the credential protocol)."""

    def _mint(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        self.calls += 1
        self.scopes.append(scopes)
        if ACR_SCOPE not in scopes:
            raise ValueError(f"EntraCredential only issues {ACR_SCOPE}, asked for {scopes}")
        return self.entra.mint(self.app)

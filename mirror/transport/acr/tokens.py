"""Azure Container Registry: its token exchange and its metadata API (tag locks).

Tokens (what ACR speaks, see docs/acr.md):

    Entra token (scope https://containerregistry.azure.net/.default)
      -> POST /oauth2/exchange   grant_type=access_token   -> refresh token (~3 h)
      -> POST /oauth2/token      grant_type=refresh_token  -> access token per scope

`AcrTokens` is the `TokenSource` for that flow. The refresh token is exchanged once
and reused for every scope until shortly before it expires; if the token endpoint
refuses it (a bare 401: expired or revoked), one new exchange is made. The Entra
token comes from an `EntraCredential` (anything with azure-core's
`get_token(*scopes)`); building one from configuration is `entra.py`'s job, so this
module never imports azure-identity. A request that needs no scope (the `GET /v2/`
check, challenged without one) gets a token for `registry:catalog:*`, the scope ACR's
own clients ask for there.

How the failures look on ACR, and what mirror says about each:

- a bare 401 from `/oauth2/exchange`: the Entra token is not accepted (another
  tenant's, or for another audience);
- a bare 401 from `/oauth2/token`, again after a new exchange: the credentials were
  refused (a wrong secret, an expired or revoked refresh token);
- a missing role is no failure here: the token comes back (200) without the
  action, and the registry call itself is refused with `insufficient_scope` (the
  registry client says which scope and to check the identity's role).

`AcrMetadata` reads and changes tag and manifest attributes
(`/acr/v1/<repo>/_tags/<tag>`, `/_manifests/<digest>`): locking a mirrored specific
tag means `writeEnabled=false, deleteEnabled=false` on the tag, its index and every
child manifest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from mirror.errors import AuthenticationError
from mirror.transport.acr import API_VERSION
from mirror.transport.auth import Challenge, Token, jwt_expiry, token_from_response

ACR_SCOPE = "https://containerregistry.azure.net/.default"
CATALOG_SCOPE = "registry:catalog:*"  # asked for when a request needs no scope
_REFRESH_MARGIN = 300.0  # renew a refresh token this long before it expires
_DEFAULT_REFRESH_LIFETIME = 3 * 3600.0


class EntraToken(Protocol):
    @property
    def token(self) -> str: ...


class EntraCredential(Protocol):
    """azure-core's `TokenCredential`, as far as mirror uses it."""

    def get_token(self, *scopes: str) -> EntraToken: ...


class AcrTokens:
    """ACR's token flow for one registry and one Entra identity (thread-safe)."""

    def __init__(
        self,
        credential: EntraCredential,
        *,
        describe: str = "the Microsoft Entra identity",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credential = credential
        self._describe = describe
        self._clock = clock
        self._refresh: Token | None = None
        self._lock = threading.Lock()

    def basic(self) -> tuple[str, str] | None:
        return None

    def describe(self) -> str:
        return self._describe

    def fetch(
        self, challenge: Challenge, scopes: tuple[str, ...]
    ) -> Generator[httpx.Request, httpx.Response, Token]:
        refresh = yield from self._refresh_token(challenge)
        response = yield self._token_request(challenge, scopes, refresh)
        if response.status_code == 401:
            # A bare 401 from the token endpoint: the refresh token expired or was
            # revoked. Go back to Entra once; a second refusal is final.
            refresh = yield from self._refresh_token(challenge, refused=refresh)
            response = yield self._token_request(challenge, scopes, refresh)
        if response.status_code == 401:
            raise AuthenticationError(
                f"{challenge.service or 'the registry'} refused the credentials of "
                f"{self._describe} at its token endpoint (HTTP 401): the credentials were "
                "refused (a wrong secret, or an expired or revoked refresh token)",
                status=401,
            )
        if response.status_code != 200:
            raise AuthenticationError(
                f"{challenge.service or 'the registry'} did not issue an access token for "
                f"{' '.join(scopes) or CATALOG_SCOPE} to {self._describe} "
                f"(HTTP {response.status_code})",
                status=response.status_code,
            )
        return token_from_response(response, self._clock())

    def _refresh_token(
        self, challenge: Challenge, *, refused: str | None = None
    ) -> Generator[httpx.Request, httpx.Response, str]:
        """The cached refresh token, or a new one from an exchange. `refused` is one the
        token endpoint turned down: replaced, unless another thread already did."""
        with self._lock:
            current = self._refresh
            usable = current is not None and self._clock() < current.expires_at
            if current is not None and usable and current.value != refused:
                return current.value
            entra = self._entra_token()
            response = yield self._exchange_request(challenge, entra.token)
            if response.status_code != 200:
                reason = (
                    "the Microsoft Entra token is not accepted (wrong tenant or audience: "
                    f"the identity must be of the registry's tenant, the token for {ACR_SCOPE})"
                    if response.status_code == 401
                    else "the token exchange failed"
                )
                raise AuthenticationError(
                    f"{challenge.service or 'the registry'} refused the Microsoft Entra "
                    f"token of {self._describe} (HTTP {response.status_code}): {reason}",
                    status=response.status_code,
                )
            value = _field(response, "refresh_token")
            expiry = jwt_expiry(value) or self._clock() + _DEFAULT_REFRESH_LIFETIME
            self._refresh = Token(value, expiry - _REFRESH_MARGIN)
            return value

    def _entra_token(self) -> EntraToken:
        try:
            return self._credential.get_token(ACR_SCOPE)
        except Exception as exc:  # azure-identity's errors; this module does not import it
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AuthenticationError(
                f"Microsoft Entra ID did not issue a token for {self._describe}: {reason[:300]}"
            ) from None

    @property
    def refresh_expires_at(self) -> float | None:
        """When the cached refresh token stops being used (for `mirror doctor`)."""
        current = self._refresh
        return current.expires_at + _REFRESH_MARGIN if current else None

    def _exchange_request(self, challenge: Challenge, entra_token: str) -> httpx.Request:
        url = urljoin(challenge.realm, "/oauth2/exchange")
        form = {"grant_type": "access_token", "service": challenge.service}
        form["access_token"] = entra_token
        return httpx.Request("POST", url, params={"api-version": API_VERSION}, data=form)

    def _token_request(
        self, challenge: Challenge, scopes: tuple[str, ...], refresh: str
    ) -> httpx.Request:
        form = {
            "grant_type": "refresh_token",
            "service": challenge.service,
            "scope": " ".join(scopes) or CATALOG_SCOPE,
            "refresh_token": refresh,
        }
        params = {"api-version": API_VERSION}
        return httpx.Request("POST", challenge.realm, params=params, data=form)


def _field(response: httpx.Response, name: str) -> str:
    try:
        value = response.json().get(name)
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not value:
        origin = urlsplit(str(response.url)).netloc
        raise AuthenticationError(f"{origin}: token exchange answered without a {name}")
    return value


# -- metadata -------------------------------------------------------------------------

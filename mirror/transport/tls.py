"""TLS for registry connections: verification on, the trust store read when first needed."""

from __future__ import annotations

import functools
import ssl
import threading
from pathlib import Path
from typing import Any


class TrustOnFirstUse(ssl.SSLContext):
    """A verifying client TLS context (certificate chain and host name checked) that
    reads its CA bundle at the first handshake, not when it is made.

    Loading a bundle costs tens of milliseconds; a registry reached over plain http
    (loopback, or `insecure`) never needs it, unless it redirects to an https host.
    """

    _bundle: str | None
    _loaded: bool
    _loading: threading.Lock

    @classmethod
    def verifying(cls, ca_bundle: Path | None = None) -> TrustOnFirstUse:
        """Trusting `ca_bundle`, or certifi's bundle (httpx's default trust store)."""
        context = cls(ssl.PROTOCOL_TLS_CLIENT)
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        context._bundle = str(ca_bundle) if ca_bundle is not None else None
        context._loaded = False
        context._loading = threading.Lock()
        return context

    def _load(self) -> None:
        with self._loading:
            if not self._loaded:
                if self._bundle is None:
                    import certifi

                    self._bundle = certifi.where()
                self.load_verify_locations(cafile=self._bundle)
                self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load()
        return super().wrap_bio(*args, **kwargs)


@functools.cache
def context_for(ca_bundle: Path | None = None) -> TrustOnFirstUse:
    """The context trusting `ca_bundle` (certifi's bundle when None), one per bundle
    for the whole process."""
    return TrustOnFirstUse.verifying(ca_bundle)

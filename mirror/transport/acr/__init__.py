"""Where Azure Container Registry is special: its token exchange (`tokens`), its
metadata API and tag locks (`metadata`), and Microsoft Entra credentials (`entra`, the
only module that imports azure-identity).

Everything else mirror does with ACR is the OCI distribution API, as with any registry.
"""

from __future__ import annotations

API_VERSION = "2021-07-01"


ACR_SUFFIX = ".azurecr.io"


def is_acr(host: str) -> bool:
    """True for `<name>.azurecr.io` (and its sovereign-cloud forms)."""
    name = host.lower().rsplit(":", 1)[0]
    return name.endswith((ACR_SUFFIX, ".azurecr.cn", ".azurecr.us", ".azurecr.de"))

"""mirror: keep Azure IoT Edge runtime images in your own registry."""

import os
import sys
import types

__version__ = "0.1.0"

# Start-up time is part of every scheduled no-op sync, so two import-time costs that
# buy mirror nothing are skipped:
# - httpx imports its own command-line client (click, rich, pygments) on import;
#   with this placeholder it falls back to a stub `httpx.main`, which mirror never calls.
sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main"))
# - pydantic scans every installed distribution for plugins when it builds the first
#   model; mirror uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

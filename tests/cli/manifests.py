"""The deployment manifest `mirror rewrite` and `mirror lint` tests start from."""

from __future__ import annotations

from tests.deployment.helpers import deployment

AGENT = "mcr.microsoft.com/azureiotedge-agent:1.5"


HUB = "mcr.microsoft.com/azureiotedge-hub:1.5"


MANIFEST = deployment(
    {"edgeAgent": AGENT, "edgeHub": HUB, "nginx": "docker.io/library/nginx:1.27"},
    credentials={},
)

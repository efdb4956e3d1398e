"""A clean, production-ready manifest to start lint cases from, and ways to vary it."""

from __future__ import annotations

import copy
import json
from typing import Any

from mirror.deployment.lint.engine import lint_source
from mirror.deployment.lint.finding import Finding
from mirror.deployment.settings import LintSettings
from tests.deployment.helpers import DELETE, dumps, edit

LOGS = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
AGENT = "modulesContent/$edgeAgent/properties.desired"
HUB = "modulesContent/$edgeHub/properties.desired"
SYSTEM = f"{AGENT}/systemModules"
FILTER = f"{AGENT}/modules/filter"
CREDENTIAL = f"{AGENT}/runtime/settings/registryCredentials/myacr"


def options(**host_config: Any) -> str:
    return json.dumps({"HostConfig": {"LogConfig": LOGS, **host_config}})


def storage(name: str) -> dict[str, Any]:
    return {"Binds": [f"/srv/{name}:/iotedge/storage"]}


HUB_PORTS = {p: [{"HostPort": p.split("/")[0]}] for p in ("5671/tcp", "8883/tcp", "443/tcp")}
ENV = {"StorageFolder": {"value": "/iotedge/storage"}, "UpstreamProtocol": {"value": "AmqpWs"}}

CLEAN: dict[str, Any] = {
    "modulesContent": {
        "$edgeAgent": {
            "properties.desired": {
                "schemaVersion": "1.1",
                "runtime": {
                    "type": "docker",
                    "settings": {
                        "minDockerVersion": "v1.25",
                        "registryCredentials": {
                            "myacr": {
                                "username": "edge-pull",
                                "password": "pull-secret",
                                "address": "myacr.azurecr.io",
                            }
                        },
                    },
                },
                "systemModules": {
                    "edgeAgent": {
                        "type": "docker",
                        "settings": {
                            "image": "myacr.azurecr.io/azureiotedge-agent:1.5.44",
                            "createOptions": options(**storage("edgeAgent")),
                        },
                        "env": copy.deepcopy(ENV),
                    },
                    "edgeHub": {
                        "type": "docker",
                        "status": "running",
                        "restartPolicy": "always",
                        "settings": {
                            "image": "myacr.azurecr.io/azureiotedge-hub:1.5.44",
                            "createOptions": options(**storage("edgeHub"), PortBindings=HUB_PORTS),
                        },
                        "env": copy.deepcopy(ENV),
                    },
                },
                "modules": {
                    "filter": {
                        "version": "1.0",
                        "type": "docker",
                        "status": "running",
                        "restartPolicy": "always",
                        "settings": {
                            "image": "myacr.azurecr.io/filter:1.2.3",
                            "createOptions": options(),
                        },
                    }
                },
            }
        },
        "$edgeHub": {
            "properties.desired": {
                "schemaVersion": "1.1",
                "routes": {"up": "FROM /messages/* INTO $upstream"},
                "storeAndForwardConfiguration": {"timeToLiveSecs": 7200},
            }
        },
    }
}


def vary(*changes: tuple[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """`CLEAN` (or `base`) with each (path, value) change applied; value DELETE removes."""
    result = base or CLEAN
    for path, value in changes:
        result = edit(result, path, value)
    return result


def lint(
    document: dict[str, Any] | str,
    settings: LintSettings | None = None,
    file: str = "deployment.json",
) -> list[Finding]:
    text = document if isinstance(document, str) else dumps(document)
    return lint_source(text, file, settings)


__all__ = ["DELETE", "lint", "vary"]

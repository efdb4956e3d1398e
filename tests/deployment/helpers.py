"""Shared helpers for the deployment tests: the corpus, and manifests built in code."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from mirror.deployment.document import parse_document
from mirror.deployment.shape import DeploymentManifest, load_manifest

DATA = Path(__file__).resolve().parent.parent / "data" / "deployments"
EXPECTED = DATA / "expected"
REGENERATE = os.environ.get("MIRROR_REGEN_GOLDEN") == "1"


def corpus() -> list[Path]:
    return sorted(DATA.glob("*.json"))


def manifest(
    text: str, file: str = "deployment.json", template: bool | None = None
) -> DeploymentManifest:
    return load_manifest(parse_document(text, file), template=template)


def deployment(images: dict[str, str], credentials: dict[str, Any] | None = None) -> str:
    """A plain manifest: `images` maps edgeAgent, edgeHub and module names to images."""
    images = dict(images)
    settings: dict[str, Any] = {"minDockerVersion": "v1.25"}
    if credentials is not None:
        settings["registryCredentials"] = credentials
    desired = {
        "schemaVersion": "1.1",
        "runtime": {"type": "docker", "settings": settings},
        "systemModules": {
            "edgeAgent": {"type": "docker", "settings": {"image": images.pop("edgeAgent")}},
            "edgeHub": {"type": "docker", "settings": {"image": images.pop("edgeHub")}},
        },
        "modules": {name: {"settings": {"image": image}} for name, image in images.items()},
    }
    return dumps({"modulesContent": {"$edgeAgent": {"properties.desired": desired}}})


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def edit(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    """A deep copy of `value` with the item at `path` (keys joined by '/') set, or
    deleted when `new` is `DELETE`."""
    result = copy.deepcopy(value)
    *parents, last = path.split("/")
    node = result
    for key in parents:
        node = node.setdefault(key, {})
    if new is DELETE:
        del node[last]
    else:
        node[last] = new
    return result


DELETE = object()

"""The OpenAPI 3.0 description of the service's JSON endpoints (`GET /openapi.json`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mirror import __version__

_REFUSALS = {
    "401": {"description": "No or wrong credential"},
    "413": {"description": "Body over the size limit"},
    "422": {"description": "A payload that does not parse"},
}
_OBJECT: dict[str, Any] = {"type": "object"}
_JSON = {"application/json": {"schema": _OBJECT}}
_TEXT = {"type": "string", "minLength": 1}
_NAMES = {"type": "array", "items": _TEXT, "minItems": 1}


def _ok(description: str) -> dict[str, Any]:
    return {"description": description, "content": _JSON}


def _hook(
    summary: str, security: list[dict[str, list[str]]] | None, **extra: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "requestBody": {"required": True, "content": _JSON},
        "responses": {
            "200": _ok("Accepted, nothing to do (ignored, duplicate, ping)"),
            "202": _ok("Accepted: a sync or an audit is queued"),
            **_REFUSALS,
        },
    }
    if security is not None:
        operation["security"] = security
    operation.update(extra)
    return operation


def spec(status_protected: bool, acr_header: str, repositories: Sequence[str]) -> dict[str, Any]:
    """The description; `status_protected` when /status needs the bearer token,
    `acr_header` the header ACR's webhook carries the shared secret in, `repositories`
    the configured repositories (the only ones a sync request may name)."""
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    status: dict[str, Any] = {
        "summary": "Runs, triggers waiting, and every mirrored tag with its state",
        "responses": {"200": _ok("The status document"), "401": _REFUSALS["401"]},
    }
    if status_protected:
        status["security"] = bearer
    github_headers = [
        {"name": name, "in": "header", "required": True, "schema": _TEXT}
        for name in ("X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery")
    ]
    names = {
        "type": "array",
        "items": {"type": "string", "enum": list(repositories)},
        "minItems": 1,
    }
    sync_body = {
        "type": "object",
        "properties": {
            "repositories": names,
            **dict.fromkeys(("lines", "versions", "tags"), _NAMES),
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "mirror", "version": __version__},
        "paths": {
            "/healthz": {
                "get": {"summary": "The process is alive", "responses": {"200": _ok("Alive")}}
            },
            "/readyz": {
                "get": {
                    "summary": "Target reachable, ledger writable, last run not failed",
                    "responses": {"200": _ok("Ready"), "503": _ok("Not ready, and why")},
                }
            },
            "/status": {"get": status},
            "/hooks/github": {
                "post": _hook(
                    "A GitHub release event (HMAC-signed)", None, parameters=github_headers
                )
            },
            "/hooks/acr": {"post": _hook("An ACR push or delete event", [{"acrSecret": []}])},
            "/hooks/sync": {
                "post": _hook(
                    "Ask for a sync, optionally narrowed",
                    bearer,
                    requestBody={
                        "required": False,
                        "content": {"application/json": {"schema": sync_body}},
                    },
                )
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "acrSecret": {"type": "apiKey", "in": "header", "name": acr_header},
            }
        },
    }

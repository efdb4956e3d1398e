"""The service's HTTP endpoints, on Starlette:

    GET  /healthz        the process is alive
    GET  /readyz         target reachable, ledger writable, last run not failed (else 503)
    GET  /metrics        Prometheus metrics
    GET  /status         JSON: the run under way, the last runs, triggers waiting, tags
    GET  /               the same, as a page
    GET  /openapi.json   the description of the JSON endpoints
    POST /hooks/github   GitHub release events (see `hooks`)
    POST /hooks/acr      ACR push/delete events
    POST /hooks/sync     ask for a sync

With `status_token_env` set, /status, /metrics and / need `Authorization: Bearer`.
The handlers are thin: they read and check the request, then ask the `Service`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mirror.logs import get_logger
from mirror.service import openapi, page
from mirror.service.hooks import (
    Answer,
    Refused,
    acr_event,
    check_secret,
    github_event,
    parse_json,
    read_body,
    release_trigger,
    sync_request,
)
from mirror.service.metrics import CONTENT_TYPE
from mirror.service.service import Service
from mirror.service.triggers import Trigger

Handler = Callable[[Request], Awaitable[Response]]


def create_app(service: Service, *, manage: bool = True) -> Starlette:
    """The ASGI application. With `manage`, the app's lifespan starts and stops the
    service (as `mirror serve` runs it)."""
    endpoints = Endpoints(service)
    routes = [
        Route("/healthz", endpoints.healthz),
        Route("/readyz", endpoints.readyz),
        Route("/metrics", endpoints.protected(endpoints.metrics)),
        Route("/status", endpoints.protected(endpoints.status)),
        Route("/", endpoints.protected(endpoints.page)),
        Route("/openapi.json", endpoints.openapi),
        Route("/hooks/github", endpoints.github, methods=["POST"]),
        Route("/hooks/acr", endpoints.acr, methods=["POST"]),
        Route("/hooks/sync", endpoints.sync, methods=["POST"]),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage:
            await run_in_threadpool(service.start)
        yield
        if manage:
            await run_in_threadpool(service.stop)

    return Starlette(routes=routes, lifespan=lifespan)


class Endpoints:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.limit = service.settings.max_body_bytes

    # --- what the service shows -----------------------------------------------------

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(self, _request: Request) -> Response:
        problems = await run_in_threadpool(self.service.not_ready)
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(self, _request: Request) -> Response:
        return Response(self.service.metrics.exposition(), media_type=CONTENT_TYPE)

    async def status(self, _request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self.service.status))

    async def page(self, _request: Request) -> Response:
        status = await run_in_threadpool(self.service.status)
        return HTMLResponse(page.render(status))

    async def openapi(self, _request: Request) -> Response:
        settings = self.service.settings
        acr = settings.webhooks.acr
        spec = openapi.spec(
            self.service.secrets.status is not None,
            acr.header if acr else "X-Mirror-Token",
            self.service.job.repositories,
        )
        return JSONResponse(spec)

    def protected(self, handler: Handler) -> Handler:
        """`handler` behind the status token, when one is configured."""
        token = self.service.secrets.status
        if token is None:
            return handler

        async def checked(request: Request) -> Response:
            try:
                check_secret(_bearer(request), token)
            except Refused as refused:
                return _refusal(refused, request)
            return await handler(request)

        return checked

    # --- webhooks -------------------------------------------------------------------

    async def github(self, request: Request) -> Response:
        secret = self.service.secrets.github
        hook = self.service.settings.webhooks.github
        if secret is None or hook is None:
            return _not_configured()
        allowed = frozenset(name.lower() for name in hook.repositories)
        try:
            body = await read_body(request, self.limit)
            event = github_event(request.headers, body, secret.encode(), allowed)
            if isinstance(event, Answer):
                return _answer(event)
            found = await run_in_threadpool(release_trigger, event, self.service.mirrors, _now())
        except Refused as refused:
            return _refusal(refused, request)
        if isinstance(found, Answer):
            return _answer(found)
        return await self._queue(found)

    async def acr(self, request: Request) -> Response:
        secret = self.service.secrets.acr
        hook = self.service.settings.webhooks.acr
        if secret is None or hook is None:
            return _not_configured()
        try:
            check_secret(request.headers.get(hook.header), secret)
            event = acr_event(parse_json(await read_body(request, self.limit)))
        except Refused as refused:
            return _refusal(refused, request)
        if isinstance(event, Answer):
            return _answer(event)
        repository = self.service.repository_of(event.repository)
        if repository is None:
            return _answer(Answer(200, {"ignored": "not a mirrored repository"}))
        self.service.audit_later(event, repository)
        return JSONResponse({"audit": f"{repository}:{event.tag}"}, status_code=202)

    async def sync(self, request: Request) -> Response:
        token = self.service.secrets.sync
        if token is None:
            return _not_configured()
        try:
            check_secret(_bearer(request), token)
            body = await read_body(request, self.limit)
            document = parse_json(body) if body.strip() else {}
            trigger = sync_request(document, frozenset(self.service.job.repositories))
        except Refused as refused:
            return _refusal(refused, request)
        return await self._queue(trigger)

    async def _queue(self, trigger: Trigger) -> Response:
        queued = await run_in_threadpool(self.service.submit, trigger)
        if not queued:
            return JSONResponse({"duplicate": True}, status_code=200)
        return JSONResponse(
            {"queued": trigger.detail, "scope": str(trigger.scope)}, status_code=202
        )


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _answer(answer: Answer) -> Response:
    return JSONResponse(answer.body, status_code=answer.status)


def _refusal(refused: Refused, request: Request) -> Response:
    """The status and nothing that helps a caller guess; the reason goes to the log."""
    get_logger().warning(
        "webhook.refused", path=request.url.path, status=refused.status, reason=refused.reason
    )
    messages: dict[int, Any] = {
        401: "unauthorized",
        403: "forbidden",
        413: "too large",
        422: "unprocessable",
    }
    return JSONResponse(
        {"error": messages.get(refused.status, "refused")}, status_code=refused.status
    )


def _not_configured() -> Response:
    return JSONResponse({"error": "not found"}, status_code=404)


def _now() -> datetime:
    return datetime.now(UTC)

"""The gateway's FastAPI application: ``/v1/payments``, ``/healthz``,
``/readyz``, ``/metrics``, OpenAPI 3.1 at ``/openapi.json`` and ``/docs``, and
the ops page (``/ops``, ``ops.py``).
Bodies over 64 KiB are refused (413) before they are read in full."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paystream.gateway import balances, ops, payments, reviews
from paystream.gateway.auth import gateway_of
from paystream.gateway.context import Gateway, open_gateway
from paystream.gateway.errors import body, install
from services.settings import Settings

MAX_BODY = 64 * 1024


class HttpMiddleware:
    """A plain ASGI middleware for HTTP requests (others pass through).
    Starlette's ``BaseHTTPMiddleware`` would cost a task and a stream each."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class BodyLimit(HttpMiddleware):
    """Refuse a body over ``MAX_BODY`` bytes with 413: by its Content-Length,
    or while it is read when it has none."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await _too_large(scope, receive, send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            """The body's chunks; past the limit, the 413 is sent and the app is
            told the client left (it answers nothing more)."""
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY and not refused:
                refused = True
                await _too_large(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    message = f"the body is over {MAX_BODY} bytes"
    await JSONResponse(body("body_too_large", message), 413)(scope, receive, send)


def _route(scope: Scope) -> str:
    """The route's template (never an id): a label of bounded cardinality."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    # FastAPI's own pages (/openapi.json, /docs) are plain routes without "route".
    return str(scope["path"]) if "endpoint" in scope else "unmatched"


class Measured(HttpMiddleware):
    """Counts and times every answer by route and status, and adds the
    request's ``RateLimit-*`` headers (set by the rate limit) to its answer."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def answered(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                extra = scope.get("state", {}).get("ratelimit_headers", {})
                if extra:
                    headers = list(message.get("headers", []))
                    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, answered)
        finally:
            gateway: Gateway = scope["app"].state.gateway
            route, method = _route(scope), str(scope["method"])
            gateway.metrics.requests.labels(method, route, str(status)).inc()
            gateway.metrics.duration.labels(method, route).observe(time.perf_counter() - started)


async def healthz() -> dict[str, str]:
    """The gateway process answers."""
    return {"status": "ok"}


async def readyz(request: Request) -> JSONResponse:
    """Kafka, PostgreSQL and Redis answer (503 naming those that do not)."""
    gateway = gateway_of(request)
    checks = {
        "kafka": await asyncio.to_thread(gateway.publisher.ready),
        "postgresql": await _postgres_ready(gateway),
        "redis": await _redis_ready(gateway),
    }
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, 200 if ready else 503)


async def _postgres_ready(gateway: Gateway) -> bool:
    try:
        async with asyncio.timeout(gateway.settings.connect_timeout_s):
            async with gateway.pool.connection() as conn:
                await conn.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False
    return True


async def _redis_ready(gateway: Gateway) -> bool:
    try:
        return bool(await gateway.cache.client.ping())
    except (RedisError, OSError):
        return False


async def metrics(request: Request) -> Response:
    exposition = gateway_of(request).metrics.exposition()
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)


def app_from_environment() -> FastAPI:
    """The application of a uvicorn worker process (``paystream gateway
    --workers``): its settings from the environment, as the CLI's."""
    return create_app(Settings(), freeze_heap=True)


def create_app(
    settings: Settings, gateway: Gateway | None = None, freeze_heap: bool = False
) -> FastAPI:
    """The application; it opens its adapters when it starts (unless handed
    them). ``freeze_heap``: the server process is its own (``paystream
    gateway``), so what is alive once started lives as long as it does."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        if gateway is not None:
            app.state.gateway = gateway
            yield {}
            return
        async with open_gateway(settings) as opened:
            app.state.gateway = opened
            if freeze_heap:
                # Out of the collector's sight, so that its full collections stop
                # pausing every request for ~100 ms (they walked these each time).
                gc.freeze()
            yield {}

    app = FastAPI(
        title="paystream merchant API",
        version="1",
        description="Create, follow and list payments (docs/api.md).",
        lifespan=lifespan,
    )
    app.include_router(payments.router)
    app.include_router(reviews.router)
    app.include_router(balances.router)
    app.include_router(ops.router)
    app.mount("/ops/assets", ops.assets, name="ops-assets")
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["health"])
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_middleware(BodyLimit)
    app.add_middleware(Measured)  # outermost: it counts the 413s too
    install(app)
    return app

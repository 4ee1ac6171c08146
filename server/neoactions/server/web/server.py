"""The HTTP server: one Starlette app (ingest, webhooks, OpenAPI, dashboard) served by uvicorn
in the event loop of the gRPC server, started and stopped by ``app.running()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neoactions.server.engine import Engine
from neoactions.server.settings import Settings
from neoactions.server.web import openapi
from neoactions.server.web.dashboard import STATIC_DIR, Dashboard
from neoactions.server.web.gateway import Gateway
from neoactions.server.web.problems import problem
from neoactions.server.web.webhooks import load_sources

log = logging.getLogger(__name__)

#: headers every response carries; the dashboard's pages add a strict Content-Security-Policy
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` and the CSP to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reason = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    return problem(exc.status_code, reason, str(exc.detail), instance=request.url.path)


def build_app(engine: Engine, settings: Settings, stopping: asyncio.Event | None = None) -> Starlette:
    """The app; ``ValueError`` for bad ``webhook_sources``."""
    gateway = Gateway(engine, load_sources(settings.webhook_sources))
    dashboard = Dashboard(engine, stopping or asyncio.Event())

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi.document(str(request.base_url)))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "serving"})

    routes: list[Any] = [
        Route("/v1/tenants/{tenant}/events", gateway.ingest, methods=["POST"]),
        Route("/v1/webhooks/{source}", gateway.webhook, methods=["POST"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        *dashboard.routes(),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_problem})
    app.add_middleware(SecurityHeaders)
    return app


class _InLoopServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service's ``serve()`` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def http_server(engine: Engine, settings: Settings, reuse_port: bool = False) -> AsyncIterator[int]:
    """Serve HTTP on ``settings.http_port`` (0: a free port) until the block ends; yields the port.
    ``OSError`` when the port is taken, ``ValueError`` for bad settings."""
    stopping = asyncio.Event()
    app = build_app(engine, settings, stopping)
    sock = _listen(settings.host, settings.http_port, reuse_port)
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)),
    )
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="http-server")
    try:
        while not server.started:
            if task.done():
                await task  # raises what stopped it
                raise OSError(f"the HTTP server on {settings.host}:{port} stopped at start")
            await asyncio.sleep(0.01)
        yield port
    finally:
        stopping.set()  # live streams end
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


__all__ = ["CSP", "SECURITY_HEADERS", "SecurityHeaders", "build_app", "http_server"]

"""Guarded test apps (FastAPI, Starlette, Flask, plain WSGI) and real HTTP servers in threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask
import uvicorn
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.serving import make_server

from jotkit.guard import Guard, Principal
from jotkit.guard.asgi import GuardMiddleware, install_error_handler
from jotkit.guard.wsgi import GuardWSGIMiddleware


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1:<free port>; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Run ``app`` under werkzeug's threaded server on a free port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def fastapi_app(guard: Guard, *, with_handler: bool = True) -> FastAPI:
    app = FastAPI()
    if with_handler:
        install_error_handler(app)

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/me")
    async def me(claims: Principal = Depends(guard.fastapi_dependency())) -> dict[str, Any]:  # noqa: B008
        return {"sub": claims.sub, "scope": sorted(claims.scope)}

    @app.get("/admin")
    async def admin(
        claims: Principal = Depends(guard.fastapi_dependency(scopes=["admin"])),  # noqa: B008
    ) -> dict[str, str]:
        return {"sub": claims.sub}

    return app


def starlette_app(guard: Guard) -> Any:
    async def whoami(request: Request) -> JSONResponse:
        claims: Principal = request.state.claims
        return JSONResponse({"sub": claims.sub})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/whoami", whoami), Route("/healthz", healthz)])
    app.add_middleware(GuardMiddleware, guard=guard, exempt_paths=["/healthz"])
    return app


def flask_app(guard: Guard) -> flask.Flask:
    app = flask.Flask("guarded")

    @app.get("/me")
    @guard.flask_required()
    def me() -> dict[str, Any]:
        return {"sub": flask.g.claims.sub, "scope": sorted(flask.g.claims.scope)}

    @app.get("/admin")
    @guard.flask_required(scopes=["admin"])
    def admin() -> dict[str, str]:
        return {"sub": flask.g.claims.sub}

    return app


def wsgi_app(guard: Guard) -> Any:
    app = flask.Flask("wrapped")

    @app.get("/whoami")
    def whoami() -> dict[str, str]:
        return {"sub": flask.request.environ["jotkit.claims"].sub}

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.wsgi_app = GuardWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, guard, exempt_paths=["/healthz"]
    )
    return app

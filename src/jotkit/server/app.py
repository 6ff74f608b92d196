"""Assemble the auth server: store, keyring, feed, service, routes, background upkeep.

``create_app(settings)`` returns the ASGI app ``jotkit serve`` runs under uvicorn. Start-up
migrates the store and loads (or, on first start, generates) the signing keys; a background
task keeps the feed, the keys and the store tidy.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from jotkit.revocation.replay import RedisReplayCache, ReplayCache
from jotkit.server import docs, oauth, operations, routes
from jotkit.server.dependencies import GuardRefusal
from jotkit.server.dpop import nonce_source
from jotkit.server.errors import ApiError, JsonResponse, error_response, error_responses
from jotkit.server.feed import ServerFeed
from jotkit.server.keyring import Keyring
from jotkit.server.limits import BodyLimit
from jotkit.server.metrics import Metrics
from jotkit.server.passwords import Passwords
from jotkit.server.paths import IssuerPaths
from jotkit.server.service import AuthService
from jotkit.server.settings import KEY_RELOAD_SECONDS, Settings
from jotkit.server.throttling import LoginCounters, RedisCounters, StoreCounters
from jotkit.store import Store, StoreError
from jotkit.store.notices import RevocationNotices

__all__ = ["build_service", "create_app"]

log = logging.getLogger("jotkit.server")

_SYNC_SECONDS = 1.0
_PRUNE_SECONDS = 300.0


def build_service(settings: Settings, *, migrate: bool = True) -> AuthService:
    """Open and (unless ``migrate`` is false: a worker whose parent did) migrate the store,
    load the keys: everything but HTTP (the CLI uses it too)."""
    store = Store(settings.database_url, pool_connections=settings.database_pool_connections)
    if migrate:
        store.migrate()
    keyring = Keyring(settings, store)
    keyring.load(now=time.time())
    publisher = None
    if settings.redis_url:
        # Imported only when configured: redis-py is an optional extra.
        redis_feed = importlib.import_module("jotkit.revocation.redis")
        publisher = redis_feed.RedisPublisher(settings.redis_url)
    feed = ServerFeed(store, publisher=publisher)
    feed.revocations.max_entries = settings.revocation_max_entries
    feed.sync(now=time.time())
    if not store.user_count():
        log.warning("no users yet: create one with `jotkit users add you@example.com`")
    metrics = Metrics()
    window = settings.login_window_seconds
    counters: LoginCounters = StoreCounters(store, window_seconds=window)
    replay: ReplayCache | None = None  # None: the store's table (server/dpop.py)
    if settings.redis_url:
        counters = RedisCounters(settings.redis_url, counters, metrics, window_seconds=window)
        replay = RedisReplayCache(settings.redis_url)
    return AuthService(
        settings,
        store,
        keyring,
        feed,
        metrics,
        Passwords(settings),
        login_counters=counters,
        dpop_replay=replay,
        dpop_nonces=nonce_source(settings, store),
    )


def _take_noticed_revocations(service: AuthService) -> None:
    """PostgreSQL said revocations committed (store/notices.py): read them now."""
    try:
        service.feed.sync(now=time.time())
    except StoreError as exc:  # the poll brings them
        log.warning("feed sync on notice failed: %s", exc.code)


async def _follow_store(service: AuthService) -> None:
    """Take the revocations other processes stored (the other workers of ``--workers``, other
    instances, the CLI) every ``feed_poll_seconds``: one indexed read of the rows above the
    cursor, so that this process's guard and feed refuse them within that bound. On
    PostgreSQL a notice brings them sooner (``RevocationNotices``); this poll is its
    fallback."""
    interval = service.settings.feed_poll_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(service.feed.sync, now=time.time())
        except StoreError as exc:
            log.warning("feed sync failed: %s", exc.code)
            await asyncio.sleep(_SYNC_SECONDS)  # not 50 warnings a second while it is down


async def _upkeep(service: AuthService) -> None:
    """Beat the heart, reload keys, rotate on schedule, prune."""
    settings = service.settings
    last_keys = last_prune = time.monotonic()
    while True:
        await asyncio.sleep(min(_SYNC_SECONDS, settings.heartbeat_seconds))
        now = time.time()
        # The heartbeat first, on its own: Redis-fed verifiers must not go stale (and refuse
        # every token) because this process cannot read its database; while it cannot, it
        # cannot write a revocation either, so "nothing new" is true.
        await asyncio.to_thread(service.feed.heartbeat, now=now)
        try:
            if time.monotonic() - last_keys >= KEY_RELOAD_SECONDS:
                last_keys = time.monotonic()
                await asyncio.to_thread(service.refresh_keys)
                if service.keyring.rotation_due(now=now):
                    rotated = await asyncio.to_thread(service.keyring.rotate, now=now)
                    if rotated is not None:  # None: another instance rotated first
                        service.metrics.inc("jotkit_key_rotations_total")
                        log.info(
                            "key_rotated",
                            extra={"audit": {"event": "key_rotated", "by": "schedule"}},
                        )
            if time.monotonic() - last_prune >= _PRUNE_SECONDS:
                last_prune = time.monotonic()
                await asyncio.to_thread(service.store.prune, now=now)
                await asyncio.to_thread(service.feed.prune, now=now)
        except StoreError as exc:
            log.warning("upkeep failed: %s", exc.code)


def _bound_database_threads(count: int) -> None:
    """Run blocking work (the database's, argon2) on at most ``count`` threads per pool.

    Sync routes and ``run_in_threadpool`` use anyio's pool (40 threads by default), and
    ``asyncio.to_thread`` the loop's executor. With more threads than pooled connections,
    PostgreSQL work queued on the pool's lock and the pool opened and closed overflow
    connections (a backend fork each) under load: refresh/s fell as concurrency rose. Bounded,
    a request waits in order for a thread that holds a connection.
    """
    anyio.to_thread.current_default_thread_limiter().total_tokens = count
    executor = ThreadPoolExecutor(max_workers=count, thread_name_prefix="jotkit-blocking")
    asyncio.get_running_loop().set_default_executor(executor)


def _freeze_startup_heap() -> None:
    """Keep what start-up built (modules, the app, the service: ~150k objects) out of the
    garbage collector's full collections from now on.

    Under load, request objects alive across two young collections reach the oldest
    generation, and CPython then runs a full collection every ~0.6 s; each one walked every
    start-up object again and stopped the whole process for 50-140 ms (measured at c=32 on 2
    cores): the tail of refresh latency and of the revocation feed's answers. Frozen, they
    are never walked (full collections took ~1.5 ms). Garbage is collected first, so no cycle
    is frozen for good.
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    service: AuthService | None = None,
    worker: int | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The auth server as an ASGI app; ``worker``: its index under ``--workers`` (the parent
    migrated the store and set up the keys, so the worker only opens them). ``freeze_heap``:
    the process is the server's own (``jotkit serve``), so its start-up ends with
    ``_freeze_startup_heap``; it is a process-wide setting, left alone when the app is
    mounted in a process of yours."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _bound_database_threads(settings.database_pool_connections)
        ready = service
        if ready is None:
            ready = await asyncio.to_thread(build_service, settings, migrate=worker is None)
        ready.feed.http.attach(asyncio.get_running_loop())
        ready.store.open_on_loop()
        app.state.service = ready
        if freeze_heap:
            _freeze_startup_heap()
        app.state.worker = worker or 0
        tasks = [asyncio.create_task(_upkeep(ready)), asyncio.create_task(_follow_store(ready))]
        follower = None
        if settings.redis_url:
            # Revocations other workers and instances make reach this process's guard over
            # Redis within milliseconds, ahead of the store poll that backs it up.
            redis_feed = importlib.import_module("jotkit.revocation.redis")
            follower = redis_feed.RedisSubscriber(settings.redis_url, ready.feed.revocations)
            follower.start()
        notices = None
        if ready.store.dialect == "postgresql":
            notices = RevocationNotices(
                ready.store, functools.partial(_take_noticed_revocations, ready)
            )
            notices.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if follower is not None:
                await asyncio.to_thread(follower.close)
            if notices is not None:
                await asyncio.to_thread(notices.close)
            await ready.store.close_on_loop()
            ready.feed.close()
            ready.login_counters.close()
            if isinstance(ready.proofs.replay, RedisReplayCache):
                ready.proofs.replay.close()
            ready.store.close()

    app = FastAPI(
        title="jotkit auth server",
        summary="Login, short-lived access JWTs, rotating refresh tokens, revocation, JWKS.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by docs.py from the package's own Swagger UI files
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.issuer_path or settings.served_path:
        app.add_middleware(
            IssuerPaths, public_path=settings.issuer_path, served_path=settings.served_path
        )
    for router in (routes.router, oauth.router, operations.router):
        app.include_router(router, responses=error_responses())
    _install_error_handlers(app)
    docs.install(app)
    _serve_web(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Any:
        return error_response(exc.code, exc.description, headers=exc.headers, detail=exc.detail)

    @app.exception_handler(GuardRefusal)
    async def guard_refusal(_request: Request, exc: GuardRefusal) -> Any:
        answer = exc.challenge
        return JsonResponse(
            dict(answer.body), status_code=answer.status, headers=dict(answer.headers)
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Any:
        problems = exc.errors()
        if any(problem.get("type") == "json_invalid" for problem in problems):
            return error_response("invalid_json", "the body is not valid JSON")
        where = ", ".join(
            f"{'.'.join(str(p) for p in problem.get('loc', ()))}: {_problem(problem)}"
            for problem in problems[:5]
        )
        return error_response("validation_failed", where or "invalid request")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> Any:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        if code is None:
            code = "invalid_request" if exc.status_code < 500 else "server_error"
        return error_response(code, str(exc.detail), headers=exc.headers)  # a 405's Allow

    @app.exception_handler(StoreError)
    async def store_error(_request: Request, exc: StoreError) -> Any:
        log.error("store error: %s", exc)
        if exc.outcome_unknown:
            # The commit was sent and its answer lost: the change may be in. Saying "nothing
            # was changed" would invite a retry that, for a refresh, looks like token theft.
            return error_response(
                "unavailable",
                "the database failed while committing: the change may or may not have been made",
            )
        return error_response("unavailable", "the database is unavailable; nothing was changed")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Any:
        # Never a stack trace on the wire; the type goes to the log for the operator.
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return error_response("server_error", "internal error")


def _problem(problem: Any) -> str:
    if problem.get("type") == "string_pattern_mismatch":
        # The pattern itself is long and in the OpenAPI document; the reason is what helps.
        return "has a character or a form not allowed here (a control character or a space?)"
    return str(problem.get("msg", ""))


# The page handles tokens and a login form: no framing (clickjacking the tour's login), no
# sniffing, no referrer, and the same CSP as its <meta> tag plus what a <meta> cannot say.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class PageFiles(StaticFiles):
    """Static files with the page's security headers, and an ``Allow`` on their 405."""

    async def get_response(self, path: str, scope: Any) -> Any:
        """The file, or the HTTPException StaticFiles raises (with Allow on a 405)."""
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        response = await super().get_response(path, scope)
        response.headers.update(_PAGE_HEADERS)
        return response


def _serve_web(app: FastAPI) -> None:
    try:
        web = importlib.import_module("jotkit.web")
    except ImportError:  # the page ships with the package; absent only in a broken install
        return
    # The router's fallback, not a mount at "/": a mount matches every path, so GET /login
    # was a 404 from the files instead of the router's 405 with Allow: POST.
    app.router.default = PageFiles(directory=web.STATIC_DIR, html=True)

"""ASGI adapters (Starlette, FastAPI): a middleware and a FastAPI dependency.

``GuardMiddleware`` authenticates each HTTP (and WebSocket) request before the app sees it
and puts the ``Principal`` on ``request.state.claims`` (``scope["state"]["claims"]``) and
``scope["jotkit.claims"]``. ``fastapi_dependency(guard, scopes)`` is a FastAPI dependency
returning the Principal. Refusals answer 400/401/403/503 with ``WWW-Authenticate`` and the
JSON body of ``jotkit.guard.errors``; no refusal is a 500.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from jotkit.extras import require_extra
from jotkit.guard.bearer import parse_cookies
from jotkit.guard.errors import BadAuthorization, Challenge, MissingCredentials
from jotkit.guard.principal import Principal
from jotkit.jose.errors import JoseError

require_extra("jotkit.guard.asgi", "'jotkit[fastapi]' (or starlette)", "starlette")

# These imports need the extra checked above.
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

if TYPE_CHECKING:
    from jotkit.guard.guard import Guard

__all__ = ["GuardMiddleware", "GuardRejection", "fastapi_dependency", "install_error_handler"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WS_POLICY_VIOLATION = 1008  # RFC 6455 §7.4.1


def _credentials(
    headers: Iterable[tuple[bytes, bytes]], want_cookies: bool
) -> tuple[str | None, dict[str, str] | None, str | None]:
    """(Authorization, cookies, DPoP): several DPoP headers are joined with commas, which
    the guard refuses (RFC 9449 §4.3 step 1: exactly one)."""
    authorization: str | None = None
    cookies: dict[str, str] | None = None
    dpop: str | None = None
    for name, value in headers:
        if name == b"authorization":
            if authorization is not None:
                # RFC 6750 §3.1: a request that repeats the credentials is invalid_request.
                raise BadAuthorization("more than one Authorization header")
            authorization = value.decode("latin-1")
        elif name == b"dpop":
            text = value.decode("latin-1")
            dpop = text if dpop is None else f"{dpop},{text}"
        elif name == b"cookie" and want_cookies:
            cookies = {**parse_cookies(value.decode("latin-1")), **(cookies or {})}
    return authorization, cookies, dpop


def request_url(scope: Scope) -> str:
    """scheme://host/path of an HTTP or WebSocket request, as a DPoP proof's htu names it."""
    host: str | None = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    scheme = {"ws": "http", "wss": "https"}.get(scope["scheme"], scope["scheme"])
    raw = scope.get("raw_path")
    path = raw.decode("latin-1").partition("?")[0] if raw else quote(scope["path"])
    root = scope.get("root_path", "")
    if root and not path.startswith(root):
        path = root + path
    return f"{scheme}://{host}{path}"


def _method(scope: Scope) -> str:
    # A WebSocket handshake is an HTTP GET (RFC 6455 §4.1).
    return str(scope.get("method", "GET"))


def _response_headers(answer: Challenge, length: int) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(length).encode()),
    ]
    headers.extend(
        (name.lower().encode(), value.encode()) for name, value in answer.headers.items()
    )
    return headers


class GuardMiddleware:
    """Pure ASGI middleware (no per-request Request object): authenticate, then call the app.

    ``scopes``: required of every request. ``required=False`` lets requests without any
    credentials through with no claims (bad credentials are still refused).
    ``exempt_paths``: exact paths that skip the guard (health checks, docs).
    """

    def __init__(
        self,
        app: ASGIApp,
        guard: Guard,
        *,
        scopes: Collection[str] = (),
        required: bool = True,
        exempt_paths: Collection[str] = (),
    ) -> None:
        """Wrap ``app``; usually ``app.add_middleware(GuardMiddleware, guard=guard)``."""
        self.app = app
        self.guard = guard
        self.scopes = tuple(scopes)
        self.required = required
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate HTTP and WebSocket requests; pass lifespan and exempt paths through."""
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        guard = self.guard
        claims: Principal | None = None
        try:
            authorization, cookies, dpop = _credentials(
                scope["headers"], guard.cookie_name is not None
            )
            claims = await guard.authenticate_async(
                authorization,
                cookies,
                scopes=self.scopes,
                dpop=dpop,
                method=_method(scope),
                url=request_url(scope),
            )
        except MissingCredentials as exc:
            if self.required:
                await self._refuse(guard.challenge(exc), kind, send)
                return
        except JoseError as exc:
            await self._refuse(guard.challenge(exc), kind, send)
            return
        if claims is not None:
            scope.setdefault("state", {})["claims"] = claims
            scope["jotkit.claims"] = claims
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(answer: Challenge, kind: str, send: Send) -> None:
        if kind == "websocket":
            # Closing before accept makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION})
            return
        body = orjson.dumps(answer.body)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": _response_headers(answer, len(body)),
            }
        )
        await send({"type": "http.response.body", "body": body})


class GuardRejection(HTTPException):
    """What the FastAPI dependency raises; ``install_error_handler`` renders it as our JSON.

    Without the handler FastAPI still answers with the right status and WWW-Authenticate,
    and ``{"detail": <error_description>}`` as the body.
    """

    def __init__(self, answer: Challenge) -> None:
        detail = str(answer.body["error_description"])
        super().__init__(answer.status, detail=detail, headers=dict(answer.headers))
        self.answer = answer


async def _render_rejection(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GuardRejection)
    return Response(
        orjson.dumps(exc.answer.body),
        status_code=exc.answer.status,
        headers=dict(exc.answer.headers),
        media_type="application/json",
    )


def install_error_handler(app: Any) -> None:
    """Make ``app`` (Starlette/FastAPI) answer GuardRejection with the guard's JSON body."""
    app.add_exception_handler(GuardRejection, _render_rejection)


def fastapi_dependency(
    guard: Guard, scopes: Collection[str] = ()
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: ``claims: Principal = Depends(fastapi_dependency(guard, ["read"]))``.

    Reuses the Principal GuardMiddleware put on the request, else authenticates itself.
    """
    needed = tuple(scopes)

    async def dependency(request: Request) -> Principal:
        claims: Principal | None = request.scope.get("jotkit.claims")
        try:
            if claims is None:
                scope = request.scope
                authorization, cookies, dpop = _credentials(
                    scope["headers"], guard.cookie_name is not None
                )
                claims = await guard.authenticate_async(
                    authorization, cookies, dpop=dpop, method=_method(scope), url=request_url(scope)
                )
            if needed:
                claims.require_scopes(needed)
        except JoseError as exc:
            raise GuardRejection(guard.challenge(exc)) from None
        return claims

    return dependency


def require(
    guard: Guard, scopes: Collection[str] = ()
) -> Callable[[Request], Awaitable[Principal]]:
    """Deprecated since 0.1.0, removed in 0.3.0: ``fastapi_dependency``."""
    warnings.warn(
        "jotkit.guard.asgi.require is deprecated: use fastapi_dependency",
        DeprecationWarning,
        stacklevel=2,
    )
    return fastapi_dependency(guard, scopes)

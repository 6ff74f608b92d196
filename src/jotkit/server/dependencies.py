"""What every router of the server reads from a request: the service, the caller, the token.

Cookie mode (``cookie_mode``): every state-changing request authenticated by a cookie must
echo the ``jotkit_csrf`` cookie in an ``X-CSRF-Token`` header (double-submit; a cross-site page
can make the browser send cookies but cannot read one to copy it into a header).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from jotkit.guard import Challenge
from jotkit.guard.bearer import bearer_token
from jotkit.jose import JoseError
from jotkit.server.errors import ApiError
from jotkit.server.service import AuthService

__all__ = [
    "CSRF_COOKIE",
    "NO_STORE",
    "Claims",
    "GuardRefusal",
    "Service",
    "authenticated",
    "bearer_credentials",
    "check_csrf",
    "client_address",
]

CSRF_COOKIE = "jotkit_csrf"
# Token answers must not be cached (RFC 6749 §5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


# Dependencies are ``async def`` on purpose: FastAPI runs a sync dependency in its thread
# pool, which costs more than the whole token check (benchmarks/bench_server.py).
async def _service(request: Request) -> AuthService:
    return request.app.state.service  # type: ignore[no-any-return]


Service = Annotated[AuthService, Depends(_service)]


def client_address(request: Request) -> str:
    """The peer address of the request (for throttling and the session list)."""
    return request.client.host if request.client else "unknown"


def bearer_credentials(request: Request) -> str:
    """The Bearer credentials of the request, or "" (for the admin token check)."""
    try:
        return bearer_token(request.headers.get("authorization"))
    except JoseError:
        return ""


def check_csrf(request: Request) -> None:
    """Refuse a cookie-authenticated request whose X-CSRF-Token does not match its cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get("x-csrf-token", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise ApiError("csrf_failed", "X-CSRF-Token header must match the jotkit_csrf cookie")


class GuardRefusal(Exception):
    """The guard refused the request's token; rendered from its challenge (status, headers)."""

    def __init__(self, challenge: Challenge) -> None:
        """Carry the guard's answer to the app's exception handler."""
        super().__init__(challenge.body.get("code"))
        self.challenge = challenge


async def authenticated(request: Request) -> Mapping[str, Any]:
    """The verified claims of the request's access token (Bearer, cookie in cookie mode, or
    ``DPoP`` with a proof by the token's key, RFC 9449 §7).

    The server protects its own endpoints with the same guard a resource server uses. A
    proof names the endpoint's public URL: the issuer and the path, as the metadata does.
    """
    service: AuthService = request.app.state.service  # one dependency less on the hot path
    headers = request.headers
    authorization = headers.get("authorization")
    cookies = request.cookies if service.settings.cookie_mode else None
    try:
        if authorization is not None and authorization[:5].lower() == "dpop ":
            proofs = headers.getlist("dpop")
            claims = await service.authenticate_dpop(
                authorization,
                ",".join(proofs) if proofs else None,
                method=request.method,
                url=service.settings.issuer + _route_path(request.scope),
            )
        else:
            claims = service.authenticate(authorization, cookies)
    except JoseError as exc:
        raise GuardRefusal(service.guard.challenge(exc)) from None
    # The guard takes the cookie whenever the header is absent *or empty* (request_token), so
    # the CSRF check keys on the same test: an empty "Authorization:" must not skip it.
    if cookies and not authorization and request.method not in _SAFE_METHODS:
        check_csrf(request)
    return claims.raw


def _route_path(scope: Mapping[str, Any]) -> str:
    """The request's path below the issuer's: ASGI's path less ``root_path`` when it holds it
    (the proxy passed the prefix through), else the path as it came (the proxy stripped it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


Claims = Annotated[Mapping[str, Any], Depends(authenticated)]

"""HTTP routes of the auth server: requests in, ``AuthService`` calls, JSON out.

Cookie mode (``cookie_mode``): tokens also travel as ``HttpOnly`` cookies scoped to their
paths, and every state-changing request authenticated by a cookie must echo the
``jotkit_csrf`` cookie in an ``X-CSRF-Token`` header (double-submit; a cross-site page can
make the browser send cookies but cannot read one to copy it into a header).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from jotkit.guard import Challenge
from jotkit.guard.bearer import bearer_token
from jotkit.jose import JoseError
from jotkit.server.errors import ApiError, JsonResponse
from jotkit.server.service import ACCESS_COOKIE, AuthService, TokenPair

__all__ = ["CSRF_COOKIE", "REFRESH_COOKIE", "GuardRefusal", "router"]

REFRESH_COOKIE = "jotkit_refresh"
CSRF_COOKIE = "jotkit_csrf"
_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

router = APIRouter()


# Dependencies are ``async def`` on purpose: FastAPI runs a sync dependency in its thread
# pool, which costs more than the whole token check (benchmarks/bench_server.py).
async def _service(request: Request) -> AuthService:
    return request.app.state.service  # type: ignore[no-any-return]


Service = Annotated[AuthService, Depends(_service)]


class LoginRequest(BaseModel):
    """Credentials for POST /login."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=4096)


class RefreshRequest(BaseModel):
    """POST /token/refresh; in cookie mode the token may come from its cookie instead."""

    refresh_token: str | None = Field(default=None, min_length=1, max_length=512)


class NewUser(BaseModel):
    """POST /users."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=8, max_length=1024)
    scope: str = Field(default="", max_length=1024, pattern=r"^[\x21\x23-\x5B\x5D-\x7E ]*$")


class TokenRequest(BaseModel):
    """RFC 7009 / RFC 7662 request, when sent as JSON instead of a form."""

    token: str = Field(min_length=1, max_length=16384)
    token_type_hint: str | None = None


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer(request: Request) -> str:
    """The Bearer credentials of the request, or "" (for the admin token check)."""
    try:
        return bearer_token(request.headers.get("authorization"))
    except JoseError:
        return ""


def _check_csrf(request: Request) -> None:
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
    """The verified claims of the request's access token (Bearer, or cookie in cookie mode).

    The server protects its own endpoints with the same guard a resource server uses.
    """
    service: AuthService = request.app.state.service  # one dependency less on the hot path
    headers = request.headers
    authorization = headers.get("authorization")
    cookies = request.cookies if service.settings.cookie_mode else None
    try:
        claims = service.authenticate(authorization, cookies)
    except JoseError as exc:
        raise GuardRefusal(service.guard.challenge(exc)) from None
    if cookies and authorization is None and request.method not in _SAFE_METHODS:
        _check_csrf(request)
    return claims.raw


Claims = Annotated[Mapping[str, Any], Depends(authenticated)]


def _token_answer(service: AuthService, pair: TokenPair) -> JsonResponse:
    settings = service.settings
    if not settings.cookie_mode:
        return JsonResponse(pair.to_json(), headers=_NO_STORE)
    csrf = secrets.token_urlsafe(32)
    body = {**pair.to_json(), "csrf_token": csrf}
    answer = JsonResponse(body, headers=_NO_STORE)
    common: dict[str, Any] = {
        "secure": settings.cookie_secure,
        "samesite": settings.cookie_samesite,
    }
    answer.set_cookie(
        ACCESS_COOKIE,
        pair.access_token,
        max_age=pair.expires_in,
        path="/",
        httponly=True,
        **common,
    )
    answer.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=settings.refresh_idle_ttl_seconds,
        path="/token",
        httponly=True,
        **common,
    )
    answer.set_cookie(
        CSRF_COOKIE, csrf, max_age=settings.refresh_idle_ttl_seconds, path="/", **common
    )
    return answer


def _clear_cookies(service: AuthService, response: Response) -> None:
    if service.settings.cookie_mode:
        response.delete_cookie(ACCESS_COOKIE, path="/")
        response.delete_cookie(REFRESH_COOKIE, path="/token")
        response.delete_cookie(CSRF_COOKIE, path="/")


@router.post("/login", tags=["tokens"])
def login(body: LoginRequest, request: Request, service: Service) -> JsonResponse:
    """Exchange email and password for an access token and a refresh token."""
    pair = service.login(
        body.email,
        body.password,
        address=_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    return _token_answer(service, pair)


@router.post("/token/refresh", tags=["tokens"])
def refresh(body: RefreshRequest, request: Request, service: Service) -> JsonResponse:
    """Rotate a refresh token: the old one is spent, a new pair is issued.

    Presenting a spent refresh token again revokes its whole session (theft detection).
    """
    token = body.refresh_token
    if token is None and service.settings.cookie_mode:
        token = request.cookies.get(REFRESH_COOKIE)
        if token is not None:
            _check_csrf(request)
    if not token:
        raise ApiError("invalid_request", "refresh_token is required")
    return _token_answer(service, service.refresh(token, address=_address(request)))


@router.post("/logout", tags=["sessions"], status_code=204)
def logout(claims: Claims, service: Service) -> Response:
    """End the session of the presented access token (its refresh token dies with it)."""
    service.logout(claims)
    response = Response(status_code=204)
    _clear_cookies(service, response)
    return response


@router.post("/logout/all", tags=["sessions"])
def logout_all(claims: Claims, service: Service) -> JsonResponse:
    """Sign out everywhere: every session of the user, and every access token issued so far."""
    revoked = service.logout_all(claims)
    response = JsonResponse({"revoked_sessions": revoked})
    _clear_cookies(service, response)
    return response


@router.get("/sessions", tags=["sessions"])
def sessions(claims: Claims, service: Service) -> JsonResponse:
    """The user's live sessions (one per login/device)."""
    return JsonResponse(
        {
            "sessions": [
                {
                    "sid": family.id,
                    "current": family.id == claims["sid"],
                    "created_at": int(family.created_at),
                    "last_used_at": int(family.last_used_at),
                    "expires_at": int(family.expires_at),
                    "user_agent": family.user_agent,
                    "client_address": family.client_address,
                }
                for family in service.sessions(claims["sub"])
            ]
        }
    )


@router.delete("/sessions/{sid}", tags=["sessions"], status_code=204)
def delete_session(sid: str, claims: Claims, service: Service) -> Response:
    """Revoke one of the user's sessions (sign out one device)."""
    service.revoke_session(claims["sub"], sid, reason="session_deleted")
    return Response(status_code=204)


@router.get("/me", tags=["resource"])
async def me(claims: Claims) -> JsonResponse:
    """The worked example of a protected resource: who the access token says you are."""
    return JsonResponse(
        {
            key: claims[key]
            for key in ("sub", "sid", "scope", "client_id", "iat", "exp")
            if key in claims
        }
    )


async def _admin(request: Request, service: Service) -> None:
    settings = service.settings
    if settings.registration == "open":
        return
    presented = _bearer(request)
    if not settings.admin_token or not hmac.compare_digest(
        presented.encode(), settings.admin_token.encode()
    ):
        raise ApiError(
            "registration_closed",
            "registration needs the admin token (JOTKIT_ADMIN_TOKEN) or JOTKIT_REGISTRATION=open",
        )


@router.post("/users", tags=["users"], status_code=201, dependencies=[Depends(_admin)])
def create_user(body: NewUser, service: Service) -> JsonResponse:
    """Register a user (open registration, or with the admin token)."""
    user = service.add_user(body.email, body.password, scope=body.scope)
    return JsonResponse({"id": user.id, "email": user.email}, status_code=201)


async def _token_request(request: Request) -> TokenRequest:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            return TokenRequest.model_validate_json(await request.body())
        except ValueError:
            raise ApiError(
                "invalid_request", "body must be JSON {token, token_type_hint}"
            ) from None
    form = await request.form()
    token, hint = form.get("token"), form.get("token_type_hint")
    if not isinstance(token, str) or not token or len(token) > 16384:
        raise ApiError("invalid_request", "the token parameter is required (RFC 7009 §2.1)")
    return TokenRequest(token=token, token_type_hint=hint if isinstance(hint, str) else None)


@router.post("/revoke", tags=["oauth"])
async def revoke(request: Request, service: Service) -> Response:
    """RFC 7009 token revocation, for access and refresh tokens (always 200)."""
    body = await _token_request(request)
    await asyncio.to_thread(service.revoke_token, body.token, body.token_type_hint)
    return Response(status_code=200, headers=_NO_STORE)


async def _introspector(request: Request, service: Service) -> None:
    secret = service.settings.introspection_secret
    if not secret:
        raise ApiError(
            "invalid_client", "introspection is disabled: set JOTKIT_INTROSPECTION_SECRET"
        )
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    presented = ""
    if scheme.lower() == "bearer":
        presented = credentials
    elif scheme.lower() == "basic":
        try:
            presented = base64.b64decode(credentials, validate=True).decode().partition(":")[2]
        except ValueError:
            presented = ""
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise ApiError(
            "invalid_client",
            "introspection needs the introspection secret (Bearer or Basic)",
            headers={"WWW-Authenticate": 'Bearer realm="jotkit-introspection"'},
        )


@router.post("/introspect", tags=["oauth"], dependencies=[Depends(_introspector)])
async def introspect(request: Request, service: Service) -> JsonResponse:
    """RFC 7662 token introspection for access and refresh tokens."""
    body = await _token_request(request)
    answer = await asyncio.to_thread(service.introspect, body.token, body.token_type_hint)
    return JsonResponse(answer, headers=_NO_STORE)


@router.get("/.well-known/jwks.json", tags=["discovery"])
async def jwks(service: Service) -> Response:
    """The public signing keys (RFC 7517), including the next and the retiring ones."""
    return Response(
        service.keyring.jwks_json,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={service.settings.jwks_max_age_seconds}"},
    )


@router.get("/.well-known/openid-configuration", tags=["discovery"])
@router.get("/.well-known/oauth-authorization-server", tags=["discovery"])
async def discovery(service: Service) -> JsonResponse:
    """Server metadata (RFC 8414 / OpenID Connect Discovery) so clients find the keys."""
    issuer = service.settings.issuer
    return JsonResponse(
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "token_endpoint": f"{issuer}/token/refresh",
            "revocation_endpoint": f"{issuer}/revoke",
            "introspection_endpoint": f"{issuer}/introspect",
            "userinfo_endpoint": f"{issuer}/me",
            "grant_types_supported": ["password", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": [],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [service.settings.algorithm],
            "access_token_signing_alg_values_supported": [service.settings.algorithm],
            "revocation_feed_endpoint": f"{issuer}/revocations",
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


async def _feed_reader(request: Request, service: Service) -> None:
    secret = service.settings.feed_token
    if secret and not hmac.compare_digest(_bearer(request).encode(), secret.encode()):
        raise ApiError(
            "invalid_client",
            "the revocation feed needs the feed token (JOTKIT_FEED_TOKEN) as Bearer",
            headers={"WWW-Authenticate": 'Bearer realm="jotkit-feed"'},
        )


@router.get("/revocations", tags=["discovery"], dependencies=[Depends(_feed_reader)])
async def revocations(
    service: Service,
    since: Annotated[int, Query(ge=0)] = 0,
    wait: Annotated[float, Query(ge=0, le=30)] = 0,
) -> JsonResponse:
    """The revocation feed: live entries after cursor ``since``, long-polling up to ``wait`` s."""
    feed = service.feed
    entries = await feed.wait(since, wait, now=time.time())
    return JsonResponse(
        {
            "cursor": feed.cursor,
            "entries": [entry.to_json() for entry in entries],
            "heartbeat_seconds": service.settings.heartbeat_seconds,
            "now": time.time(),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/healthz", tags=["operations"])
async def healthz() -> JsonResponse:
    """The process is up."""
    return JsonResponse({"status": "ok"})


@router.get("/readyz", tags=["operations"])
async def readyz(service: Service) -> JsonResponse:
    """The store answers and a signing key is loaded."""
    if not await asyncio.to_thread(service.store.ping):
        raise ApiError("unavailable", "the database does not answer")
    return JsonResponse({"status": "ready", "cursor": service.feed.cursor})


@router.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
async def metrics(service: Service) -> PlainTextResponse:
    """Prometheus metrics."""
    revocations = service.feed.revocations
    text = service.metrics.render(
        [
            ("jotkit_revocation_entries", "Live revocation entries in memory.", len(revocations)),
            (
                "jotkit_signing_keys",
                "Published signing keys.",
                len(service.keyring.verification_keys),
            ),
        ]
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

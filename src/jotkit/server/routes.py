"""HTTP routes for people's sessions: login, refresh, logout, the session list, /me, users.

Requests in, ``AuthService`` calls, JSON out. The endpoints other services call live in
``oauth.py`` (revoke, introspect, keys, discovery, the revocation feed), the operator's in
``operations.py``.

Cookie mode (``cookie_mode``): tokens also travel as ``HttpOnly`` cookies scoped to their
paths, and every state-changing request authenticated by a cookie must echo the
``jotkit_csrf`` cookie in an ``X-CSRF-Token`` header (double-submit, see dependencies.py).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field

from jotkit.accounts import (
    EMAIL_PATTERN,
    MAX_EMAIL_LENGTH,
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_CHARACTERS,
)
from jotkit.server.dependencies import (
    CSRF_COOKIE,
    NO_STORE,
    GuardRefusal,
    RequestClaims,
    Service,
    authenticated,
    bearer_credentials,
    check_csrf,
    client_address,
)
from jotkit.server.errors import ApiError, JsonResponse, error_responses
from jotkit.server.service import ACCESS_COOKIE, AuthService, TokenPair

__all__ = ["CSRF_COOKIE", "REFRESH_COOKIE", "GuardRefusal", "router"]

REFRESH_COOKIE = "jotkit_refresh"
_MAX_REFRESH_TOKEN = 512  # ours are 43 characters; the cap only bounds what gets hashed

router = APIRouter()


def _fits_lowercased(email: str) -> str:
    # Emails are stored lower-cased, and lower() may lengthen text ("İ" becomes two
    # characters): too long for the column, PostgreSQL refused it with a DataError (503).
    if len(email.lower()) > MAX_EMAIL_LENGTH:
        raise ValueError(f"the lower-case email is over {MAX_EMAIL_LENGTH} characters")
    return email


Email = Annotated[
    str,
    Field(min_length=3, max_length=MAX_EMAIL_LENGTH, pattern=EMAIL_PATTERN),
    AfterValidator(_fits_lowercased),
]
# Session ids are uuid4 hex; anything else (a NUL reached PostgreSQL) is refused unread.
SESSION_ID_PATTERN = r"^[0-9A-Za-z_-]{1,64}$"


class LoginRequest(BaseModel):
    """Credentials for POST /login."""

    email: Email
    password: str = Field(min_length=1, max_length=4096)


class RefreshRequest(BaseModel):
    """POST /token/refresh as JSON (the schema OpenAPI shows; ``_presented_refresh_token``
    reads the body, which may also be an RFC 6749 form or, in cookie mode, empty)."""

    refresh_token: str = Field(min_length=1, max_length=_MAX_REFRESH_TOKEN)
    grant_type: Literal["refresh_token"] = "refresh_token"


class NewUser(BaseModel):
    """POST /users."""

    email: Email
    # Characters, so that every one of them fits the byte cap (4 bytes a character at most).
    password: str = Field(min_length=MIN_PASSWORD_CHARACTERS, max_length=MAX_PASSWORD_BYTES // 4)
    scope: str = Field(default="", max_length=1024, pattern=r"^[\x21\x23-\x5B\x5D-\x7E ]*$")


def _token_answer(service: AuthService, pair: TokenPair) -> JsonResponse:
    settings = service.settings
    # RFC 9449 §8: with nonces on, every token answer hands out the current one.
    headers = {**NO_STORE, **service.proofs.fresh_nonce_header()}
    if not settings.cookie_mode:
        return JsonResponse(pair.to_json(), headers=headers)
    csrf = secrets.token_urlsafe(32)
    body = {**pair.to_json(), "csrf_token": csrf}
    answer = JsonResponse(body, headers=headers)
    common: dict[str, Any] = {
        "secure": settings.cookie_secure,
        "samesite": settings.cookie_samesite,
    }
    prefix = settings.issuer_path  # the browser's path to this server
    answer.set_cookie(
        ACCESS_COOKIE,
        pair.access_token,
        max_age=pair.expires_in,
        path=f"{prefix}/",
        httponly=True,
        **common,
    )
    answer.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=settings.refresh_idle_ttl_seconds,
        path=f"{prefix}/token",
        httponly=True,
        **common,
    )
    answer.set_cookie(
        CSRF_COOKIE, csrf, max_age=settings.refresh_idle_ttl_seconds, path=f"{prefix}/", **common
    )
    return answer


def _clear_cookies(service: AuthService, response: Response) -> None:
    if service.settings.cookie_mode:
        prefix = service.settings.issuer_path
        response.delete_cookie(ACCESS_COOKIE, path=f"{prefix}/")
        response.delete_cookie(REFRESH_COOKIE, path=f"{prefix}/token")
        response.delete_cookie(CSRF_COOKIE, path=f"{prefix}/")


_AUTHENTICATED = error_responses(400, 401, 403)
# The DPoP header of the token endpoints, for the OpenAPI document (RFC 9449 §4.1).
_DPOP_HEADER = {
    "name": "DPoP",
    "in": "header",
    "required": False,
    "description": "A DPoP proof (RFC 9449) with htm POST and htu this endpoint's URL: binds "
    "the session to its key (token_type DPoP, cnf.jkt). Required when the server's dpop "
    "setting is 'required'; with nonces on, a 400 use_dpop_nonce gives the nonce in the "
    "DPoP-Nonce header.",
    "schema": {"type": "string", "maxLength": 4096},
}
_NONCE_RESPONSE_HEADER = {
    "DPoP-Nonce": {
        "description": "The server's current DPoP nonce (when nonces are on, RFC 9449 §8)",
        "schema": {"type": "string"},
    }
}


def _token_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses = error_responses(*statuses)
    responses[400] = {**responses[400], "headers": _NONCE_RESPONSE_HEADER}
    responses[200] = {"description": "A token pair", "headers": _NONCE_RESPONSE_HEADER}
    return responses


def _dpop_headers(request: Request) -> list[str]:
    return request.headers.getlist("dpop")


@router.post(
    "/login",
    tags=["tokens"],
    responses=_token_responses(400, 401, 422, 429),
    openapi_extra={"parameters": [_DPOP_HEADER]},
)
def login(body: LoginRequest, request: Request, service: Service) -> JsonResponse:
    """Exchange email and password for an access token and a refresh token.

    With a DPoP proof, the session and its access tokens are bound to the proof's key.
    """
    pair = service.login(
        body.email,
        body.password,
        address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
        dpop=_dpop_headers(request),
    )
    return _token_answer(service, pair)


async def _presented_refresh_token(request: Request, service: AuthService) -> str:
    """The refresh token of a POST /token/refresh: from a JSON body ``{refresh_token}``, an
    RFC 6749 §6 form (``grant_type=refresh_token&refresh_token=...``: discovery names this
    endpoint the token endpoint) or, in cookie mode when the body names none, the cookie."""
    fields: Mapping[str, Any]
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields = await request.form()
    else:
        body = await request.body()
        try:
            fields = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            raise ApiError("invalid_json", "the body is not valid JSON") from None
        if type(fields) is not dict:
            raise ApiError("invalid_request", "the body must be a JSON object {refresh_token}")
    grant = fields.get("grant_type", "refresh_token")
    if grant != "refresh_token":
        raise ApiError("unsupported_grant_type", "this endpoint takes grant_type=refresh_token")
    token = fields.get("refresh_token")
    if token is None and service.settings.cookie_mode:
        token = request.cookies.get(REFRESH_COOKIE)
        if token is not None:
            check_csrf(request)
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_REFRESH_TOKEN:
        raise ApiError(
            "invalid_request",
            f"refresh_token is required: a string of 1 to {_MAX_REFRESH_TOKEN} characters",
        )
    return token


_REFRESH_SCHEMA = RefreshRequest.model_json_schema()
_REFRESH_BODY = {
    "required": True,
    "description": "JSON or an RFC 6749 form; in cookie mode it may be {} or empty.",
    "content": {
        "application/json": {"schema": _REFRESH_SCHEMA},
        "application/x-www-form-urlencoded": {"schema": _REFRESH_SCHEMA},
    },
}


@router.post(
    "/token/refresh",
    tags=["tokens"],
    openapi_extra={"requestBody": _REFRESH_BODY, "parameters": [_DPOP_HEADER]},
    responses=_token_responses(400, 401, 403),
)
async def refresh(request: Request, service: Service) -> JsonResponse:
    """Rotate a refresh token: the old one is spent, a new pair is issued.

    Presenting a spent refresh token again revokes its whole session (theft detection), as
    does presenting the token of a DPoP-bound session without a proof by its key.
    """
    token = await _presented_refresh_token(request, service)
    address = client_address(request)
    dpop = _dpop_headers(request)
    if service.store.dialect == "sqlite" and service.settings.workers == 1:
        # The embedded store has one writer at a time and no network wait: running the
        # rotation (~0.35 ms) on the event loop beats a thread pool hop, which cost ~0.2 ms
        # more per refresh (benchmarks/bench_server.py, refresh/s).
        pair = service.refresh(token, address=address, dpop=dpop)
    elif service.store.on_loop is not None and not dpop:
        # PostgreSQL: the rotation's one statement is awaited on the loop; the thread hop
        # around it cost more CPU than the statement (store/loop.py, bench_scale.py).
        pair = await service.refresh_on_loop(token, address=address)
    else:
        # A DPoP proof's jti is written by blocking I/O; under --workers SQLite may wait for
        # another process's write lock: there the loop stays free.
        pair = await run_in_threadpool(service.refresh, token, address=address, dpop=dpop)
    return _token_answer(service, pair)


@router.post("/logout", tags=["sessions"], status_code=204, responses=_AUTHENTICATED)
def logout(claims: RequestClaims, service: Service) -> Response:
    """End the session of the presented access token (its refresh token dies with it)."""
    service.logout(claims)
    response = Response(status_code=204)
    _clear_cookies(service, response)
    return response


@router.post("/logout/all", tags=["sessions"], responses=_AUTHENTICATED)
def logout_all(claims: RequestClaims, service: Service) -> JsonResponse:
    """Sign out everywhere: every session of the user, and every access token issued so far."""
    revoked = service.logout_all(claims)
    response = JsonResponse({"revoked_sessions": revoked})
    _clear_cookies(service, response)
    return response


@router.get("/sessions", tags=["sessions"], responses=_AUTHENTICATED)
def sessions(claims: RequestClaims, service: Service) -> JsonResponse:
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


@router.delete(
    "/sessions/{sid}",
    tags=["sessions"],
    status_code=204,
    responses=error_responses(400, 401, 403, 404, 422),
)
def delete_session(
    sid: Annotated[str, Path(pattern=SESSION_ID_PATTERN)], claims: RequestClaims, service: Service
) -> Response:
    """Revoke one of the user's sessions (sign out one device)."""
    service.revoke_session(claims["sub"], sid, reason="session_deleted")
    return Response(status_code=204)


@router.get("/me", tags=["resource"], responses=_AUTHENTICATED)
async def me(request: Request) -> JsonResponse:
    """The worked example of a protected resource: who the access token says you are."""
    # The guard called directly rather than through Depends: FastAPI's dependency solving
    # cost ~67k instructions per request, ~10% of the whole request (callgrind, in-process).
    claims = await authenticated(request)
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
    presented = bearer_credentials(request)
    if not settings.admin_token or not hmac.compare_digest(
        presented.encode(), settings.admin_token.encode()
    ):
        raise ApiError(
            "registration_closed",
            "registration needs the admin token (JOTKIT_ADMIN_TOKEN) or JOTKIT_REGISTRATION=open",
        )


@router.post(
    "/users",
    tags=["users"],
    status_code=201,
    dependencies=[Depends(_admin)],
    responses=error_responses(400, 403, 409, 422),
)
def create_user(body: NewUser, service: Service) -> JsonResponse:
    """Register a user (open registration, or with the admin token)."""
    user = service.add_user(body.email, body.password, scope=body.scope)
    return JsonResponse({"id": user.id, "email": user.email}, status_code=201)

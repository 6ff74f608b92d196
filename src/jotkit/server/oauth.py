"""HTTP routes other services call: RFC 7009 /revoke, RFC 7662 /introspect, the JWKS,
discovery metadata (RFC 8414), and the revocation feed resource servers follow.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from jotkit.server.dependencies import NO_STORE, Service, bearer_credentials
from jotkit.server.errors import ApiError, JsonResponse

__all__ = ["router"]

router = APIRouter()


class TokenRequest(BaseModel):
    """RFC 7009 / RFC 7662 request, when sent as JSON instead of a form."""

    token: str = Field(min_length=1, max_length=16384)
    token_type_hint: str | None = None


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
    return Response(status_code=200, headers=NO_STORE)


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
    return JsonResponse(answer, headers=NO_STORE)


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
            # The token endpoint takes refresh_token grants only; a password login is
            # POST /login with JSON, which is not RFC 6749's password grant.
            "grant_types_supported": ["refresh_token"],
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
    if secret and not hmac.compare_digest(bearer_credentials(request).encode(), secret.encode()):
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
    """The revocation feed: live entries after cursor ``since``, long-polling up to ``wait`` s.

    ``cursor`` never runs ahead of ``entries``: resuming from it misses nothing. While the
    server shuts down, held polls are answered at once with ``"closing": true``.
    """
    feed = service.feed
    if since > feed.cursor:
        # The subscriber has seen more than this process has read: another instance wrote
        # it. Read the store before answering with a lower cursor, which the subscriber
        # would take for a new database (and read the whole feed again).
        await asyncio.to_thread(feed.sync, now=time.time())
    page = await feed.wait(since, wait, now=time.time())
    answer = {
        "cursor": page.cursor,
        "entries": [entry.to_json() for entry in page.entries],
        "heartbeat_seconds": service.settings.heartbeat_seconds,
        "now": time.time(),
    }
    if page.closing:
        answer["closing"] = True
    return JsonResponse(answer, headers={"Cache-Control": "no-store"})

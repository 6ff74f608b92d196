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

from jotkit.guard.jwks import metadata_url
from jotkit.jose.jws import DEFAULT_MAX_TOKEN_BYTES
from jotkit.server.dependencies import NO_STORE, Service, bearer_credentials
from jotkit.server.errors import ApiError, JsonResponse, error_responses
from jotkit.server.metadata import METADATA_PATH, OPENID_CONFIGURATION_PATH, metadata

__all__ = ["router"]

router = APIRouter()


class TokenRequest(BaseModel):
    """RFC 7009 / RFC 7662 request, as a form or as JSON."""

    # A token is 1*VSCHAR (RFC 6749 Appendix A), at most what the verifier reads: anything
    # else is no token of ours, and the bound keeps a form-encoded one under the body cap.
    token: str = Field(min_length=1, max_length=DEFAULT_MAX_TOKEN_BYTES, pattern=r"^[\x20-\x7E]+$")
    token_type_hint: str | None = Field(default=None, max_length=64)


async def _token_request(request: Request) -> TokenRequest:
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            return TokenRequest.model_validate_json(await request.body())
        form = await request.form()
        return TokenRequest.model_validate(
            {name: form[name] for name in ("token", "token_type_hint") if name in form}
        )
    except ValueError:  # pydantic's ValidationError included
        raise ApiError(
            "invalid_request",
            f"the token parameter is required: 1 to {DEFAULT_MAX_TOKEN_BYTES} printable ASCII "
            "characters, and token_type_hint at most 64 (RFC 7009 §2.1)",
        ) from None


_TOKEN_SCHEMA = TokenRequest.model_json_schema()
# Read by hand (_token_request: a form, or JSON), so declared by hand: without it the OpenAPI
# document shows no body and schema-driven clients send an empty one.
_TOKEN_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {"schema": _TOKEN_SCHEMA},
        "application/json": {"schema": _TOKEN_SCHEMA},
    },
}


@router.post(
    "/revoke",
    tags=["oauth"],
    openapi_extra={"requestBody": _TOKEN_BODY},
    response_class=Response,
    responses={
        200: {"description": "Revoked, or nothing to revoke (RFC 7009 §2.2)"},
        **error_responses(400),
    },
)
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


@router.post(
    "/introspect",
    tags=["oauth"],
    dependencies=[Depends(_introspector)],
    openapi_extra={"requestBody": _TOKEN_BODY},
    responses=error_responses(400, 401),
)
async def introspect(request: Request, service: Service) -> JsonResponse:
    """RFC 7662 token introspection for access and refresh tokens."""
    body = await _token_request(request)
    answer = await asyncio.to_thread(service.introspect, body.token, body.token_type_hint)
    return JsonResponse(answer, headers=NO_STORE)


class JwkSetResponse(Response):
    """A JWK Set, with its registered media type (RFC 7517 §8.5)."""

    media_type = "application/jwk-set+json"


_JWK_SET_SCHEMA = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
}


@router.get(
    "/.well-known/jwks.json",
    tags=["discovery"],
    response_class=JwkSetResponse,
    responses={200: {"content": {JwkSetResponse.media_type: {"schema": _JWK_SET_SCHEMA}}}},
)
async def jwks(service: Service) -> Response:
    """The public signing keys (RFC 7517), including the next and the retiring ones."""
    return JwkSetResponse(
        service.keyring.jwks_json,
        headers={"Cache-Control": f"public, max-age={service.settings.jwks_max_age_seconds}"},
    )


@router.get(METADATA_PATH, tags=["discovery"])
async def discovery(service: Service) -> JsonResponse:
    """Authorization server metadata (RFC 8414) so clients find the keys and the endpoints."""
    return JsonResponse(
        metadata(service.settings), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get(OPENID_CONFIGURATION_PATH, tags=["discovery"], status_code=404)
async def openid_configuration(service: Service) -> JsonResponse:
    """Always 404 ``not_an_openid_provider``: jotkit issues no ID tokens and has no
    authorization endpoint, and a client trusting an OpenID document would try flows that
    do not exist here. Its metadata is at /.well-known/oauth-authorization-server."""
    where = metadata_url(service.settings.issuer)
    raise ApiError(
        "not_an_openid_provider",
        "this server is an OAuth 2.0 authorization server, not an OpenID Provider (no ID "
        f"tokens, no authorization endpoint); its RFC 8414 metadata is at {where}",
    )


async def _feed_reader(request: Request, service: Service) -> None:
    secret = service.settings.feed_token
    if secret and not hmac.compare_digest(bearer_credentials(request).encode(), secret.encode()):
        raise ApiError(
            "invalid_client",
            "the revocation feed needs the feed token (JOTKIT_FEED_TOKEN) as Bearer",
            headers={"WWW-Authenticate": 'Bearer realm="jotkit-feed"'},
        )


@router.get(
    "/revocations",
    tags=["discovery"],
    dependencies=[Depends(_feed_reader)],
    responses=error_responses(401, 422),
)
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
    page = await feed.http.wait(since, wait, now=time.time())
    answer = page.to_json(heartbeat_seconds=service.settings.heartbeat_seconds, now=time.time())
    return JsonResponse(answer, headers={"Cache-Control": "no-store"})

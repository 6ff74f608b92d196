"""API errors: one table from stable code to HTTP status, and the JSON body they all share.

Every error answer is ``{"error": <stable code>, "error_description": <for people>}``; the
codes follow OAuth 2.0 (RFC 6749 §5.2, RFC 6750 §3.1) where one exists. A refused access
token is the guard's answer instead (``jotkit.guard.errors``), which adds its ``code``; a
refused DPoP proof at the token endpoints (RFC 9449 §5) adds its ERR_DPOP_* ``code`` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

__all__ = ["STATUS", "ApiError", "ErrorBody", "JsonResponse", "error_response", "error_responses"]


class JsonResponse(Response):
    """A JSON answer serialized by orjson (several times faster than the stdlib encoder)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """The body bytes."""
        return orjson.dumps(content)


STATUS: Mapping[str, int] = {
    "invalid_request": 400,
    "invalid_json": 400,
    "invalid_dpop_proof": 400,  # RFC 9449 §5: a DPoP proof at the token endpoints
    "use_dpop_nonce": 400,  # RFC 9449 §8: retry with the DPoP-Nonce header's value
    "unsupported_token_type": 400,
    "unsupported_grant_type": 400,  # RFC 6749 §5.2
    "invalid_grant": 401,  # a refresh token that is unknown, spent, expired or revoked
    "invalid_credentials": 401,
    "invalid_token": 401,
    "invalid_client": 401,
    "csrf_failed": 403,
    "insufficient_scope": 403,
    "registration_closed": 403,
    "not_found": 404,
    "not_an_openid_provider": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "request_too_large": 413,
    "headers_too_large": 431,
    "validation_failed": 422,
    "too_many_attempts": 429,
    "server_error": 500,
    "unavailable": 503,
}


class ApiError(Exception):
    """Raised by a route; rendered by the app's handler as the JSON error for ``code``."""

    def __init__(
        self,
        code: str,
        description: str,
        *,
        headers: Mapping[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        """``code`` must be a key of STATUS; ``detail``: a stable ERR_* code for the body."""
        super().__init__(description)
        self.code = code
        self.status = STATUS[code]
        self.description = description
        self.headers = dict(headers or {})
        self.detail = detail


def error_response(
    code: str,
    description: str,
    *,
    headers: Mapping[str, str] | None = None,
    detail: str | None = None,
) -> JsonResponse:
    """The one shape of every error answer (``detail``: the body's ``code``, when one)."""
    headers = dict(headers or {})
    headers.setdefault("Cache-Control", "no-store")
    body = {"error": code, "error_description": description}
    if detail is not None:
        body["code"] = detail
    return JsonResponse(body, status_code=STATUS[code], headers=headers)


class ErrorBody(BaseModel):
    """The JSON body of every error answer, as the OpenAPI document shows it."""

    error: str
    error_description: str
    code: str | None = None  # a refused access token or DPoP proof: the stable ERR_* code
    scope: str | None = None  # insufficient_scope: the scopes the resource needs


_MEANING = {
    400: "Malformed request (invalid_request, invalid_json, unsupported_grant_type), or a "
    "refused DPoP proof (invalid_dpop_proof; use_dpop_nonce: retry with DPoP-Nonce)",
    401: "Missing, invalid, expired or revoked credentials",
    403: "Not allowed (csrf_failed, insufficient_scope, registration_closed)",
    404: "No such resource",
    409: "Conflict with what is stored",
    413: "Request body over max_body_bytes",
    422: "A field fails validation (validation_failed)",
    429: "Too many failed logins; Retry-After says when to try again",
    431: "Request headers over max_header_bytes or max_header_count",
    503: "The database or the revocation feed is unavailable",
}
# What any route can answer: the body and header caps act before routing, and every route
# that reads the store can find it down.
ANY_ROUTE = (413, 431, 503)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for ``statuses``, each with the shared error body."""
    return {
        status: {"model": ErrorBody, "description": _MEANING[status]}
        for status in sorted({*statuses, *ANY_ROUTE})
    }

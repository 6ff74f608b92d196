"""What the guard refuses, and the one table that turns a refusal into an HTTP answer.

Every refusal is a ``JoseError`` with a stable ``code``. ``challenge(exc)`` maps it to the
status, the ``WWW-Authenticate`` challenge (RFC 6750 §3) and the JSON body every adapter sends:
``{"error": <RFC 6750 error>, "error_description": <for people>, "code": <stable code>}``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from jotkit.codes import (
    CATALOGUE,
    ERR_GUARD_BAD_AUTHORIZATION,
    ERR_GUARD_INSUFFICIENT_SCOPE,
    ERR_GUARD_NO_CREDENTIALS,
    ERR_JWKS_UNAVAILABLE,
)
from jotkit.jose.dpop import DPoPError
from jotkit.jose.errors import JoseError, KeyNotFound

__all__ = [
    "ERRORS",
    "BadAuthorization",
    "Challenge",
    "InsufficientScope",
    "JWKSUnavailable",
    "MissingCredentials",
    "challenge",
]


class MissingCredentials(JoseError):
    """The request carries no Bearer token (and no token cookie): RFC 6750 §3.1, no error."""

    code = ERR_GUARD_NO_CREDENTIALS


class BadAuthorization(JoseError):
    """The Authorization header says Bearer but is not ``Bearer <b64token>`` (RFC 6750 §2.1)."""

    code = ERR_GUARD_BAD_AUTHORIZATION


class InsufficientScope(JoseError):
    """The token is valid but lacks a scope the resource needs; ``scopes`` names them all."""

    code = ERR_GUARD_INSUFFICIENT_SCOPE

    def __init__(self, message: str, *, scopes: Collection[str]) -> None:
        super().__init__(message)
        self.scopes = tuple(scopes)


class JWKSUnavailable(KeyNotFound):
    """The issuer's key set cannot be fetched and no usable (fresh enough) copy is held."""

    code = ERR_JWKS_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class _Rule:
    status: int
    error: str | None  # the RFC 6750 error in the challenge; None: a bare challenge (§3.1)
    body_error: str


def _rule(code: str, status: int, error: str) -> _Rule:
    # RFC 6750 §3.1: a request with no credentials gets a challenge without an error; a 503
    # gets no challenge at all (Retry-After instead).
    bare = status == 503 or code == ERR_GUARD_NO_CREDENTIALS
    return _Rule(status, None if bare else error, error)


# The guard's answers other than invalid_token (a DPoP proof has its own, _dpop_challenge).
_ANSWERS = ("missing_token", "invalid_request", "insufficient_scope", "temporarily_unavailable")
# One table from code to answer, read from the catalogue (jotkit.codes) once, at import.
# Anything not listed is an invalid token (401), which is what every JoseError from signature
# or claims checking is. A stale revocation feed or an unreachable JWKS are the verifier's own
# trouble, not the client's: 503, so that a client does not throw away a good token and
# stampede the auth server for a new one.
ERRORS: Mapping[str, _Rule] = {
    code: _rule(code, entry.status, entry.error)
    for code, entry in CATALOGUE.items()
    if entry.status is not None and entry.error in _ANSWERS
}
_INVALID_TOKEN = _Rule(401, "invalid_token", "invalid_token")
_RETRY_AFTER_SECONDS = "5"

# RFC 7235 quoted-string minus the two characters that would need escaping: a description
# may quote attacker-chosen text (a kid), which must never break out of the header.
_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
_MAX_DESCRIPTION = 200


def _quoted(text: str) -> str:
    return _UNSAFE.sub("?", text)[:_MAX_DESCRIPTION]


@dataclass(frozen=True, slots=True)
class Challenge:
    """An HTTP refusal: ``status``, the ``headers`` (WWW-Authenticate...) and the JSON ``body``."""

    status: int
    www_authenticate: str | None
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def challenge(
    exc: JoseError,
    *,
    realm: str = "jotkit",
    dpop_algs: str | None = None,
    dpop_nonce: str | None = None,
) -> Challenge:
    """Map a refusal to its HTTP answer through ``ERRORS`` (RFC 6750 §3, §3.1).

    A DPoPError answers with the DPoP scheme, its RFC 9449 error (``invalid_dpop_proof``,
    ``use_dpop_nonce`` or, for a bound token sent as Bearer, ``invalid_token``) and
    ``dpop_algs``, the algorithms a proof may use (§7.1); ``use_dpop_nonce`` also carries
    ``dpop_nonce``, the nonce to retry with, in a ``DPoP-Nonce`` header (§9).
    """
    if isinstance(exc, DPoPError):
        return _dpop_challenge(exc, realm, dpop_algs, dpop_nonce)
    rule = ERRORS.get(exc.code, _INVALID_TOKEN)
    # Only the header needs the quoted-string form; the JSON body says it as it is.
    description = str(exc)[:_MAX_DESCRIPTION]
    params = [f'realm="{_quoted(realm)}"']
    if rule.error is not None:
        params.append(f'error="{rule.error}"')
        params.append(f'error_description="{_quoted(description)}"')
    if isinstance(exc, InsufficientScope):
        params.append(f'scope="{_quoted(" ".join(exc.scopes))}"')
    headers = {"Cache-Control": "no-store"}
    www_authenticate: str | None = None
    if rule.status == 503:
        headers["Retry-After"] = _RETRY_AFTER_SECONDS
    else:
        www_authenticate = "Bearer " + ", ".join(params)
        if rule.error is None and dpop_algs:
            # No credentials at all: offer both schemes this resource takes (RFC 9110 §11.6.1
            # allows several challenges; RFC 9449 §7.1 names DPoP's with its algs).
            www_authenticate += f', DPoP realm="{_quoted(realm)}", algs="{_quoted(dpop_algs)}"'
        headers["WWW-Authenticate"] = www_authenticate
    body: dict[str, Any] = {
        "error": rule.body_error,
        "error_description": description,
        "code": exc.code,
    }
    if isinstance(exc, InsufficientScope):
        body["scope"] = " ".join(exc.scopes)
    return Challenge(rule.status, www_authenticate, body, headers)


def _dpop_challenge(exc: DPoPError, realm: str, algs: str | None, nonce: str | None) -> Challenge:
    description = _quoted(str(exc))
    params = [
        f'realm="{_quoted(realm)}"',
        f'error="{exc.error}"',
        f'error_description="{description}"',
    ]
    if algs:
        params.append(f'algs="{_quoted(algs)}"')
    www_authenticate = "DPoP " + ", ".join(params)
    headers = {"Cache-Control": "no-store", "WWW-Authenticate": www_authenticate}
    if nonce is not None and exc.error == "use_dpop_nonce":
        headers["DPoP-Nonce"] = nonce
    body = {"error": exc.error, "error_description": description, "code": exc.code}
    return Challenge(401, www_authenticate, body, headers)

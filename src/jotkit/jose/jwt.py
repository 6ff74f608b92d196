"""JSON Web Tokens (RFC 7519) over JWS: sign, verify with a claims policy, and peek.

``verify`` is the safe default: ``exp`` is required, ``aud`` in a token is always checked,
and the algorithm comes from the key. ``peek`` decodes without verifying, for display only.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import orjson

from jotkit.codes import ERR_JWT_CLAIMS_INVALID, ERR_JWT_MISSING_EXP, ERR_JWT_SECRET_CLAIM
from jotkit.jose.b64 import b64decode
from jotkit.jose.claims import (
    REQUIRE_EXP,
    SECRET_CLAIM_NAMES,
    check_typ,
    numeric_date,
    sensitive_claims,
    validate_positional,
)
from jotkit.jose.errors import InvalidClaim, JoseError, KeyMismatch, MalformedToken, TokenTooLarge
from jotkit.jose.jws import (
    DEFAULT_MAX_TOKEN_BYTES,
    decode_header,
    shape_error,
    sign_compact,
    verify_compact,
)
from jotkit.jose.keys import Key
from jotkit.jose.keyset import KeySet

__all__ = ["decode_claims", "peek", "sign", "verify"]


def decode_claims(payload_segment: str) -> dict[str, Any]:
    """Decode a JWT payload segment into its claims object (strict JSON, an object)."""
    return _parse_claims(b64decode(payload_segment, "the payload"))


def _parse_claims(payload: bytes) -> dict[str, Any]:
    try:
        # orjson rejects NaN/Infinity, invalid UTF-8 and nesting past 1024 levels itself.
        claims = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise MalformedToken("the claims are not valid JSON", code=ERR_JWT_CLAIMS_INVALID) from None
    if type(claims) is not dict:
        raise MalformedToken("the claims must be a JSON object", code=ERR_JWT_CLAIMS_INVALID)
    return claims


def verify(
    token: str | bytes,
    key_or_keyset: Key | KeySet,
    *,
    algorithms: Collection[str] | None = None,
    issuer: str | Collection[str] | None = None,
    audience: str | Collection[str] | None = None,
    subject: str | None = None,
    typ: str | None = None,
    leeway: float = 0,
    max_age: float | None = None,
    require: Collection[str] = REQUIRE_EXP,
    now: float | None = None,
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
) -> dict[str, Any]:
    """Verify a JWT's signature and claims; return the claims. Raises only JoseError.

    Signature first (the payload is not parsed before it is authentic), then the ``typ``
    header, then the claims at ``now`` (default: the system clock) with ``leeway`` seconds.
    """
    # The one place this sequence is written: Verifier calls this function with its policy.
    try:
        header, payload, _ = verify_compact(token, key_or_keyset, algorithms, max_token_bytes)
        claims = _parse_claims(payload)
        if typ is not None:
            check_typ(header, typ)
        validate_positional(
            claims,
            time.time() if now is None else now,
            leeway,
            issuer,
            audience,
            subject,
            max_age,
            require,
        )
        return claims
    except JoseError:
        raise
    except Exception as exc:  # a bug of ours must still not leak as a non-JoseError
        raise MalformedToken(f"token could not be processed ({type(exc).__name__})") from None


def sign(
    claims: Mapping[str, Any],
    key: Key,
    *,
    alg: str | None = None,
    header: Mapping[str, Any] | None = None,
    allow_no_exp: bool = False,
) -> str:
    """Sign ``claims`` as a JWT (header ``typ: JWT`` unless ``header`` says otherwise).

    Refuses what would make an unsafe token: no ``exp`` (a token that never dies) unless
    ``allow_no_exp``, a non-numeric ``exp``/``nbf``/``iat``, and claims named like secrets
    (password, client_secret, api_key...): a JWT is signed, not encrypted.
    """
    if type(claims) is not dict and not isinstance(claims, Mapping):  # ABC check is slow
        raise MalformedToken("JWT claims must be a mapping")
    if not isinstance(key, Key):
        raise KeyMismatch("sign needs a Key")
    if "exp" not in claims and not allow_no_exp:
        raise InvalidClaim(
            'refusing to sign a JWT without "exp": it would never expire '
            "(pass allow_no_exp=True if you mean it)",
            claim="exp",
            code=ERR_JWT_MISSING_EXP,
        )
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if type(value) is not int and (value is not None or name in claims):
            numeric_date(claims, name)  # a finite float passes; anything else raises
    secrets = sensitive_claims(claims, SECRET_CLAIM_NAMES)
    if secrets:
        raise InvalidClaim(
            f"refusing to put {secrets} in a JWT: its payload is readable by anyone who holds it",
            claim=secrets[0],
            code=ERR_JWT_SECRET_CLAIM,
        )
    try:
        payload = orjson.dumps(claims)
    except TypeError as exc:
        raise MalformedToken(f"claims are not JSON-serializable: {exc}") from None
    return sign_compact(payload, key, alg, "JWT", header)


def peek(
    token: str | bytes, *, max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES
) -> tuple[dict[str, Any], dict[str, Any]]:
    """UNVERIFIED: decode a JWT's header and claims WITHOUT checking its signature or claims.

    For display, debugging and routing (e.g. choosing an issuer's key set) only: nothing in
    the result can be trusted. Use ``verify`` before acting on any of it.
    """
    if isinstance(token, bytes | bytearray):
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("a token is ASCII text") from None
    if not isinstance(token, str):
        raise MalformedToken("a token is a string")
    if len(token) > max_token_bytes:
        raise TokenTooLarge(f"token is {len(token)} bytes, over the {max_token_bytes}-byte cap")
    parts = token.split(".")
    if len(parts) != 3 or parts[0].lstrip()[:1] == "{":
        raise shape_error(token.encode(), len(parts))
    header = decode_header(parts[0])
    return header, decode_claims(parts[1])

"""JSON Web Tokens (RFC 7519) over JWS: sign, verify with a claims policy, and peek.

``verify`` is the safe default: ``exp`` is required, ``aud`` in a token is always checked,
and the algorithm comes from the key. ``peek`` decodes without verifying, for display only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import orjson

from jotkit.codes import ERR_JWT_CLAIMS_INVALID, ERR_JWT_MISSING_EXP, ERR_JWT_SECRET_CLAIM
from jotkit.jose.b64 import b64decode
from jotkit.jose.claims import (
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
from jotkit.jose.policy import DEFAULT_POLICY, Policy, policy_from

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


# Keyword calls build their Policy once per distinct set of values: a call site passes the
# same constants every time. The last set is compared first (a tuple compare, ~1.1k
# instructions with the build, against ~1.4k for a dict lookup); other hashable sets are
# remembered in a bounded dict; an unhashable one (an audience list) builds a Policy per call.
_KEYWORD_POLICIES: dict[tuple[Any, ...], Policy] = {}
_KEYWORD_POLICIES_MAX = 256
_KEYWORDS: tuple[str, ...] = ("algorithms", "issuer", "audience", "subject", "typ", "leeway")
_KEYWORDS += ("max_age", "require", "max_token_bytes")
_last_keyword_policy: tuple[tuple[Any, ...] | None, Policy] = (None, DEFAULT_POLICY)


def verify(
    token: str | bytes,
    key_or_keyset: Key | KeySet,
    policy: Policy | None = None,
    *,
    algorithms: Collection[str] | None = None,
    issuer: str | Collection[str] | None = None,
    audience: str | Collection[str] | None = None,
    subject: str | None = None,
    typ: str | None = None,
    leeway: float | None = None,
    max_age: float | None = None,
    require: Collection[str] | None = None,
    now: float | None = None,
    max_token_bytes: int | None = None,
) -> dict[str, Any]:
    """Verify a JWT's signature and claims under ``policy``; return the claims. Raises only
    JoseError (``InvalidPolicy`` for keywords that make no valid Policy).

    The keywords are ``Policy``'s and build one; None (or left out) is Policy's default
    (``exp`` required, no leeway). Give a policy or keywords, not both. Signature first (the
    payload is not parsed before it is authentic), then the ``typ`` header, then the claims
    at ``now`` (default: the policy's clock).
    """
    if policy is None:
        keywords = (
            algorithms,
            issuer,
            audience,
            subject,
            typ,
            leeway,
            max_age,
            require,
            max_token_bytes,
        )
        last_keywords, policy = _last_keyword_policy
        if keywords != last_keywords:
            policy = _keyword_policy(keywords)
    elif (  # `is not None` is two bytecodes each: the policy path stays as cheap
        algorithms is not None
        or issuer is not None
        or audience is not None
        or subject is not None
        or typ is not None
        or leeway is not None
        or max_age is not None
        or require is not None
        or max_token_bytes is not None
    ):
        raise TypeError("jwt.verify takes a policy or policy keywords, not both")
    # The one place this sequence is written: Verifier calls this function with its policy.
    try:
        header, payload, _ = verify_compact(
            token, key_or_keyset, policy.algorithms, policy.max_token_bytes
        )
        # _parse_claims inline for a valid token (one Python call less: ~440 instructions,
        # what building the keyword policy costs); anything else goes through it.
        try:
            claims = orjson.loads(payload)
        except orjson.JSONDecodeError:
            claims = None
        if type(claims) is not dict:
            claims = _parse_claims(payload)  # raises the error that says what is wrong
        if policy.typ is not None:
            check_typ(header, policy.typ)
        validate_positional(
            claims,
            policy.clock() if now is None else now,
            policy.leeway,
            policy.issuer,
            policy.audience,
            policy.subject,
            policy.max_age,
            policy.require,
        )
        return claims  # type: ignore[no-any-return]  # a dict: checked above
    except JoseError:
        raise
    except Exception as exc:  # a bug of ours must still not leak as a non-JoseError
        raise MalformedToken(f"token could not be processed ({type(exc).__name__})") from None


def _keyword_policy(keywords: tuple[Any, ...]) -> Policy:
    """The Policy of jwt.verify's keywords (None: Policy's default), remembered when the
    values are hashable: a list may change after the call, a remembered tuple may not."""
    global _last_keyword_policy
    try:
        policy = _KEYWORD_POLICIES.get(keywords)
        hashable = True
    except TypeError:
        policy, hashable = None, False
    if policy is None:
        given = dict(zip(_KEYWORDS, keywords, strict=True))
        policy = policy_from(None, "jwt.verify", stacklevel=4, **given)
        if hashable:
            if len(_KEYWORD_POLICIES) >= _KEYWORD_POLICIES_MAX:
                _KEYWORD_POLICIES.clear()  # call sites are few; many sets are computed values
            _KEYWORD_POLICIES[keywords] = policy
    if hashable:
        _last_keyword_policy = (keywords, policy)  # one rebinding: threads see a whole pair
    return policy


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

"""The JOSE error hierarchy: every failure of parsing, keys, signatures or claims.

Each class carries a stable machine ``code`` (panva/jose style, ``ERR_JWT_EXPIRED``), a constant
of the one catalogue, ``jotkit.codes``, that callers, the guard's error table and the CLI map to
their own outputs. Messages help the user fix the problem and never contain a token, a secret or
key material.
"""

from __future__ import annotations

from collections.abc import Mapping

from jotkit.codes import (
    ERR_JOSE,
    ERR_JOSE_ALG_NOT_ALLOWED,
    ERR_JOSE_ALG_UNSUPPORTED,
    ERR_JWK_INVALID,
    ERR_JWKS_NO_MATCHING_KEY,
    ERR_JWS_MALFORMED,
    ERR_JWS_SIGNATURE_INVALID,
    ERR_JWS_TOO_LARGE,
    ERR_JWT_CLAIM_INVALID,
    ERR_JWT_EXPIRED,
    ERR_JWT_INVALID_AUD,
    ERR_JWT_INVALID_CLIENT_ID,
    ERR_JWT_INVALID_CNF,
    ERR_JWT_INVALID_EXP,
    ERR_JWT_INVALID_IAT,
    ERR_JWT_INVALID_ISS,
    ERR_JWT_INVALID_JTI,
    ERR_JWT_INVALID_NBF,
    ERR_JWT_INVALID_SCOPE,
    ERR_JWT_INVALID_SID,
    ERR_JWT_INVALID_SUB,
    ERR_JWT_INVALID_TYP,
    ERR_JWT_MISSING_AUD,
    ERR_JWT_MISSING_CLIENT_ID,
    ERR_JWT_MISSING_EXP,
    ERR_JWT_MISSING_IAT,
    ERR_JWT_MISSING_ISS,
    ERR_JWT_MISSING_JTI,
    ERR_JWT_MISSING_NBF,
    ERR_JWT_MISSING_SCOPE,
    ERR_JWT_MISSING_SID,
    ERR_JWT_MISSING_SUB,
    ERR_JWT_NOT_YET_VALID,
    ERR_JWT_REVOKED,
    ERR_POLICY_INVALID,
)

__all__ = [
    "ExpiredToken",
    "InvalidClaim",
    "InvalidKey",
    "InvalidPolicy",
    "InvalidSignature",
    "JoseError",
    "KeyMismatch",
    "KeyNotFound",
    "MalformedToken",
    "NotYetValid",
    "RevokedToken",
    "TokenTooLarge",
    "UnsupportedAlgorithm",
]


# The code of an invalid or a missing claim, by claim name: one constant each, so that
# ``grep ERR_JWT_INVALID_AUD`` finds this line. A claim not listed gets the generic code
# (ERR_JWT_CLAIM_INVALID, ERR_JWT_MISSING_CLAIM) and is named by ``InvalidClaim.claim``.
INVALID_CLAIM_CODES: Mapping[str, str] = {
    "exp": ERR_JWT_INVALID_EXP,
    "nbf": ERR_JWT_INVALID_NBF,
    "iat": ERR_JWT_INVALID_IAT,
    "iss": ERR_JWT_INVALID_ISS,
    "aud": ERR_JWT_INVALID_AUD,
    "sub": ERR_JWT_INVALID_SUB,
    "typ": ERR_JWT_INVALID_TYP,
    "jti": ERR_JWT_INVALID_JTI,
    "sid": ERR_JWT_INVALID_SID,
    "client_id": ERR_JWT_INVALID_CLIENT_ID,
    "scope": ERR_JWT_INVALID_SCOPE,
    "cnf": ERR_JWT_INVALID_CNF,
}
MISSING_CLAIM_CODES: Mapping[str, str] = {
    "exp": ERR_JWT_MISSING_EXP,
    "nbf": ERR_JWT_MISSING_NBF,
    "iat": ERR_JWT_MISSING_IAT,
    "iss": ERR_JWT_MISSING_ISS,
    "aud": ERR_JWT_MISSING_AUD,
    "sub": ERR_JWT_MISSING_SUB,
    "jti": ERR_JWT_MISSING_JTI,
    "sid": ERR_JWT_MISSING_SID,
    "client_id": ERR_JWT_MISSING_CLIENT_ID,
    "scope": ERR_JWT_MISSING_SCOPE,
}


class JoseError(Exception):
    """Base of every error jotkit.jose raises; ``code`` is stable, the message is for people."""

    code: str = ERR_JOSE

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self})"


class MalformedToken(JoseError):
    """The token is not a well-formed JWS compact serialization / JWT (RFC 7515 §7.1)."""

    code = ERR_JWS_MALFORMED


class TokenTooLarge(MalformedToken):
    """The token is longer than the configured cap; nothing of it was decoded."""

    code = ERR_JWS_TOO_LARGE


class UnsupportedAlgorithm(JoseError):
    """The ``alg`` is not one jotkit implements (``none`` included, in every spelling)."""

    code = ERR_JOSE_ALG_UNSUPPORTED


class KeyMismatch(JoseError):
    """The algorithm is not allowed for this key or by this policy (algorithm confusion)."""

    code = ERR_JOSE_ALG_NOT_ALLOWED


class KeyNotFound(KeyMismatch):
    """No key of the caller's set matches the token's ``kid`` (or its algorithm)."""

    code = ERR_JWKS_NO_MATCHING_KEY


class InvalidKey(JoseError):
    """Key material is unusable: malformed, too weak, or not meant for signatures."""

    code = ERR_JWK_INVALID


class InvalidSignature(JoseError):
    """The signature does not verify with the selected key."""

    code = ERR_JWS_SIGNATURE_INVALID


class InvalidClaim(JoseError):
    """A claim (or the ``typ`` header) fails validation; ``claim`` names it."""

    code = ERR_JWT_CLAIM_INVALID

    def __init__(self, message: str, *, claim: str, code: str | None = None) -> None:
        super().__init__(
            message, code=code or INVALID_CLAIM_CODES.get(claim, ERR_JWT_CLAIM_INVALID)
        )
        self.claim = claim


class ExpiredToken(InvalidClaim):
    """``exp`` is in the past (beyond the leeway), or the token is older than ``max_age``."""

    code = ERR_JWT_EXPIRED

    def __init__(self, message: str, *, claim: str = "exp", code: str | None = None) -> None:
        super().__init__(message, claim=claim, code=code or type(self).code)


class NotYetValid(InvalidClaim):
    """``nbf`` is in the future (beyond the leeway)."""

    code = ERR_JWT_NOT_YET_VALID

    def __init__(self, message: str, *, claim: str = "nbf", code: str | None = None) -> None:
        super().__init__(message, claim=claim, code=code or type(self).code)


class RevokedToken(JoseError):
    """A revocation hook rejected the token (its ``jti``, its session or its user)."""

    code = ERR_JWT_REVOKED


class InvalidPolicy(JoseError, ValueError):
    """A verification ``Policy`` (or the keywords that build one) is unusable: an unknown
    algorithm, a negative leeway, an audience of the wrong type... Raised when the policy is
    built, never by a token; ``code`` names the field (``ERR_POLICY_LEEWAY``)."""

    code = ERR_POLICY_INVALID

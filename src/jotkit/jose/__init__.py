"""The JOSE core: JWS, JWK and JWT, pure and synchronous (no I/O, no clock but the one given)."""

from __future__ import annotations

from jotkit.jose import jws, jwt
from jotkit.jose.algorithms import ALGORITHMS
from jotkit.jose.errors import (
    ExpiredToken,
    InvalidClaim,
    InvalidKey,
    InvalidPolicy,
    InvalidSignature,
    JoseError,
    KeyMismatch,
    KeyNotFound,
    MalformedToken,
    NotYetValid,
    RevokedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
)
from jotkit.jose.keys import Key
from jotkit.jose.keyset import KeySet
from jotkit.jose.policy import Policy
from jotkit.jose.verifier import Verifier

__all__ = [
    "ALGORITHMS",
    "ExpiredToken",
    "InvalidClaim",
    "InvalidKey",
    "InvalidPolicy",
    "InvalidSignature",
    "JoseError",
    "Key",
    "KeyMismatch",
    "KeyNotFound",
    "KeySet",
    "MalformedToken",
    "NotYetValid",
    "Policy",
    "RevokedToken",
    "TokenTooLarge",
    "UnsupportedAlgorithm",
    "Verifier",
    "jws",
    "jwt",
]

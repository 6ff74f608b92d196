"""jotkit: stateless token authentication with JSON Web Tokens.

The public API is this package root; see README.md for a quick start.
"""

from __future__ import annotations

from jotkit.jose import (
    ALGORITHMS,
    ExpiredToken,
    InvalidClaim,
    InvalidKey,
    InvalidPolicy,
    InvalidSignature,
    JoseError,
    Key,
    KeyMismatch,
    KeyNotFound,
    KeySet,
    MalformedToken,
    NotYetValid,
    Policy,
    RevokedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
    Verifier,
    dpop,
    jws,
    jwt,
)

__version__ = "0.1.0"

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
    "__version__",
    "dpop",
    "jws",
    "jwt",
]

"""The resource-server side: verify every request's access token, locally.

``Guard`` holds the policy (issuer, audience, keys or remote JWKS, revocation set) and
``Principal`` is what a verified request carries. Adapters, each imported only
by its users: ``jotkit.guard.asgi`` (Starlette, FastAPI), ``jotkit.guard.wsgi`` (Flask, any
WSGI app), ``jotkit.guard.django`` (Django, Django REST framework).
"""

from __future__ import annotations

import warnings
from typing import Any

from jotkit.guard.bearer import bearer_token, request_token
from jotkit.guard.errors import (
    ERRORS,
    BadAuthorization,
    Challenge,
    InsufficientScope,
    JWKSUnavailable,
    MissingCredentials,
    challenge,
)
from jotkit.guard.guard import Guard
from jotkit.guard.jwks import RemoteJWKS, discover_jwks_uri, metadata_url
from jotkit.guard.nonces import DPoPNonces
from jotkit.guard.principal import Principal
from jotkit.jose.dpop import DPoPError, ProofPolicy
from jotkit.revocation.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
from jotkit.revocation.transport import Feed  # its home; here for Guard(feed=...)

__all__ = [
    "ERRORS",
    "BadAuthorization",
    "Challenge",
    "DPoPError",
    "DPoPNonces",
    "Feed",
    "Guard",
    "InsufficientScope",
    "JWKSUnavailable",
    "MemoryReplayCache",
    "MissingCredentials",
    "Principal",
    "ProofPolicy",
    "RedisReplayCache",
    "RemoteJWKS",
    "ReplayCache",
    "bearer_token",
    "challenge",
    "discover_jwks_uri",
    "metadata_url",
    "request_token",
]


def __getattr__(name: str) -> Any:
    # Deprecated names (docs/renames.md), resolved on use so that each use warns.
    if name == "Claims":
        warnings.warn(
            "jotkit.guard.Claims is deprecated: it is jotkit.guard.Principal",
            DeprecationWarning,
            stacklevel=2,
        )
        return Principal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

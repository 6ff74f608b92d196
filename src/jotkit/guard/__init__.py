"""The resource-server side: verify every request's access token, locally.

``Guard`` holds the policy (issuer, audience, keys or remote JWKS, revocation set) and
``Claims`` is what a verified request carries. Adapters, each imported only
by its users: ``jotkit.guard.asgi`` (Starlette, FastAPI), ``jotkit.guard.wsgi`` (Flask, any
WSGI app), ``jotkit.guard.django`` (Django, Django REST framework).
"""

from __future__ import annotations

from jotkit.guard.bearer import bearer_token, request_token
from jotkit.guard.claims import Claims
from jotkit.guard.errors import (
    ERRORS,
    BadAuthorization,
    Challenge,
    InsufficientScope,
    JWKSUnavailable,
    MissingCredentials,
    challenge,
)
from jotkit.guard.guard import Feed, Guard
from jotkit.guard.jwks import RemoteJWKS, discover_jwks_uri, metadata_url
from jotkit.guard.nonces import DPoPNonces
from jotkit.jose.dpop import DPoPError, ProofPolicy
from jotkit.revocation.replay import MemoryReplayCache, RedisReplayCache, ReplayCache

__all__ = [
    "ERRORS",
    "BadAuthorization",
    "Challenge",
    "Claims",
    "DPoPError",
    "DPoPNonces",
    "Feed",
    "Guard",
    "InsufficientScope",
    "JWKSUnavailable",
    "MemoryReplayCache",
    "MissingCredentials",
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

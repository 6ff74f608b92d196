"""DPoP at the auth server (RFC 9449, docs/dpop.md): proofs at the token endpoints, the
replay cache every instance shares, and server nonces.

``/login`` and ``/token/refresh`` take an optional ``DPoP`` header (required when
``dpop = "required"``); a valid proof binds the session to the proof's key (``cnf.jkt``).
The URL a proof must name is the endpoint's public URL, the issuer plus the path, whatever
the request's Host or a proxy in front says. Proofs are checked by ``jose.dpop`` (one checker
for the guard and the server); what is the server's own is where their ``jti`` are kept:

- ``redis_url`` set: Redis (``SET NX PX``), shared by every process and instance;
- otherwise the database (``dpop_proofs``, one upsert per proof): every process of
  ``--workers`` and every instance on the same SQLite file or PostgreSQL database sees it.

A per-process memory cache would let a proof replay once at each process, so it is never used.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from jotkit.guard.nonces import DPoPNonces
from jotkit.jose.dpop import (
    ERR_DPOP_MISSING,
    ERR_DPOP_MULTIPLE,
    ERR_DPOP_REPLAYED,
    DPoPError,
    ProofChecker,
    ProofPolicy,
)
from jotkit.revocation.replay import ReplayCache, ReplayCacheUnavailable
from jotkit.server.errors import ApiError
from jotkit.server.settings import Settings
from jotkit.store import Store, StoreError

__all__ = ["NONCE_HEADER", "StoreReplayCache", "TokenEndpointProofs", "refusal"]

NONCE_HEADER = "DPoP-Nonce"
_NONCE_SECRET = "dpop_nonce"


class StoreReplayCache:
    """A ``ReplayCache`` in the store's ``dpop_proofs`` table; the database being down fails
    closed (ReplayCacheUnavailable: 503), never as "first use"."""

    def __init__(self, store: Store) -> None:
        """Keep proofs in ``store``."""
        self.store = store

    def first_use(self, key: str, ttl_seconds: float) -> bool:
        """True the first time ``key`` is seen within ``ttl_seconds``, by any instance."""
        now = time.time()
        # Hashed: a fixed-size primary key whatever the jti (up to 256 characters).
        proof_hash = hashlib.sha256(key.encode()).hexdigest()
        try:
            return self.store.first_use_of_proof(proof_hash, now=now, expires_at=now + ttl_seconds)
        except StoreError as exc:
            raise ReplayCacheUnavailable(
                f"the DPoP replay cache (the database) is unavailable: {exc.code}"
            ) from None


def nonce_source(settings: Settings, store: Store) -> DPoPNonces | None:
    """The server's nonces when ``dpop_nonce`` is on: keyed by a secret kept in the store,
    made by the first instance that needs it, so that every instance accepts every nonce."""
    if not settings.dpop_nonce:
        return None
    secret = store.shared_secret(_NONCE_SECRET, now=time.time())
    return DPoPNonces(secret, window_seconds=settings.dpop_nonce_seconds)


def proof_policy(settings: Settings, nonces: DPoPNonces | None = None) -> ProofPolicy:
    """The policy for proofs at this server (``nonces``: checked at the token endpoints)."""
    return ProofPolicy(
        iat_window_seconds=settings.dpop_iat_window_seconds,
        check_nonce=nonces.accepts if nonces is not None else None,
    )


class TokenEndpointProofs:
    """The DPoP proof of a ``/login`` or ``/token/refresh`` request (RFC 9449 §4.3, §5, §8)."""

    def __init__(self, settings: Settings, replay: ReplayCache, nonces: DPoPNonces | None) -> None:
        """Check under ``settings``; ``replay`` is the shared ReplayCache."""
        self.settings = settings
        self.required = settings.dpop == "required"
        self.nonces = nonces
        self.checker = ProofChecker(proof_policy(settings, nonces))
        self.replay = replay

    def key_thumbprint(self, proofs: Sequence[str], path: str) -> str | None:
        """The RFC 7638 thumbprint of the key that signed the request's one proof, or None
        when there is none (allowed unless DPoP is required). Raises DPoPError or
        ReplayCacheUnavailable."""
        if not proofs:
            if self.required:
                raise DPoPError(
                    "this server requires DPoP: send a DPoP proof header", code=ERR_DPOP_MISSING
                )
            return None
        if len(proofs) > 1 or "," in proofs[0]:
            raise DPoPError("the request has more than one DPoP header", code=ERR_DPOP_MULTIPLE)
        checked = self.checker.check(
            proofs[0], method="POST", url=self.settings.issuer + path, now=time.time()
        )
        ttl = self.checker.policy.replay_ttl_seconds
        if not self.replay.first_use(f"{checked.jkt}:{checked.jti}", ttl):
            raise DPoPError(
                "this DPoP proof was already used (jti replayed)", code=ERR_DPOP_REPLAYED
            )
        return checked.jkt

    def fresh_nonce_header(self) -> dict[str, str]:
        """``{"DPoP-Nonce": <nonce>}`` when nonces are on, else nothing."""
        return {NONCE_HEADER: self.nonces.fresh()} if self.nonces is not None else {}


def refusal(exc: DPoPError | ReplayCacheUnavailable, proofs: TokenEndpointProofs) -> ApiError:
    """The token endpoint's answer (RFC 9449 §5, §8): 400 ``invalid_dpop_proof`` or
    ``use_dpop_nonce`` (with a fresh ``DPoP-Nonce``), and the stable ERR_DPOP_* code."""
    if isinstance(exc, ReplayCacheUnavailable):
        return ApiError("unavailable", str(exc), headers={"Retry-After": "5"}, detail=exc.code)
    return ApiError(exc.error, str(exc), headers=proofs.fresh_nonce_header(), detail=exc.code)

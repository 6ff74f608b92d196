"""The durable store: users, refresh families, signing keys, revocations, login throttling, DPoP.

One class over SQLAlchemy Core, the same queries on SQLite (the embedded default) and
PostgreSQL, put together from one class per concern: the connection plumbing
(``engine.py``), users (``users.py``), sessions (``sessions.py``), the revocation feed
(``revocations.py``), signing keys (``keys.py``), login throttling (``throttling.py``) and
DPoP (``dpop.py``).
Every multi-row change runs in one transaction, so a failure leaves nothing half-written.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, select

from jotkit.store.dpop import DPoPStore
from jotkit.store.errors import Conflict, StoreError
from jotkit.store.keys import KeyRecord, KeyStore
from jotkit.store.revocations import RevocationStore
from jotkit.store.schema import dpop_proofs, families, refresh_tokens, revocations, signing_keys
from jotkit.store.sessions import Family, Rotation, SessionStore
from jotkit.store.throttling import ThrottleStore
from jotkit.store.users import User, UserStore

__all__ = [
    "Conflict",
    "Family",
    "KeyRecord",
    "Rotation",
    "Store",
    "StoreError",
    "User",
]


class Store(UserStore, SessionStore, RevocationStore, KeyStore, ThrottleStore, DPoPStore):
    """All persistence of the auth server; see the module docstring."""

    def prune(self, *, now: float) -> int:
        """Forget what can no longer matter: old revocations, spent/expired tokens, sessions.

        Returns how many rows went. The highest revocation row is kept so that cursors never
        restart (SQLite would reuse the id of a deleted last row).
        """
        last = self.last_cursor()
        with self._write() as connection:
            gone = connection.execute(
                delete(revocations).where(
                    and_(revocations.c.forget_after < now, revocations.c.id < last)
                )
            ).rowcount
            dead_families = select(families.c.id).where(
                (families.c.expires_at < now) | (families.c.revoked_at < now - 86400)
            )
            gone += connection.execute(
                delete(refresh_tokens).where(
                    (refresh_tokens.c.expires_at < now)
                    | refresh_tokens.c.family_id.in_(dead_families)
                )
            ).rowcount
            gone += connection.execute(
                delete(families).where(
                    and_(
                        families.c.id.in_(dead_families),
                        ~families.c.id.in_(select(refresh_tokens.c.family_id)),
                    )
                )
            ).rowcount
            gone += connection.execute(
                delete(dpop_proofs).where(dpop_proofs.c.expires_at < now)
            ).rowcount
            gone += connection.execute(
                delete(signing_keys).where(signing_keys.c.remove_after < now)
            ).rowcount
        return int(gone)

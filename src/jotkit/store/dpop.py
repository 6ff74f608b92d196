"""DPoP state every instance shares: the proofs already accepted, and the nonce secret.

A proof's ``jti`` must be accepted once (RFC 9449 §11.1) by every instance that serves the
same URLs, and a server nonce made by one instance must be accepted by the others (§8): both
live in the database all instances already share, so no deployment needs more than it has.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from jotkit.store.engine import Database
from jotkit.store.schema import dpop_proofs, server_secrets

__all__ = ["DPoPStore"]

_SECRET_BYTES = 32


class DPoPStore(Database):
    """The DPoP part of ``Store``."""

    def first_use_of_proof(self, proof_hash: str, *, now: float, expires_at: float) -> bool:
        """Record a proof until ``expires_at``; True unless a live record of it exists.

        One upsert: concurrent presentations of one proof (threads, instances) see exactly
        one True; an expired record (not pruned yet) is taken over.
        """
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        upsert = dialect.insert(dpop_proofs).values(proof_hash=proof_hash, expires_at=expires_at)
        statement = upsert.on_conflict_do_update(
            index_elements=[dpop_proofs.c.proof_hash],
            set_={"expires_at": expires_at},
            where=dpop_proofs.c.expires_at <= now,
        )
        with self._write() as connection:
            # RETURNING, not rowcount: through psycopg the upsert's rowcount did not say 1.
            return (
                connection.execute(statement.returning(dpop_proofs.c.proof_hash)).first()
                is not None
            )

    def shared_secret(self, name: str, *, now: float) -> bytes:
        """The secret called ``name``, made (32 random bytes) by the first caller to ask."""
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        query = select(server_secrets.c.secret).where(server_secrets.c.name == name)
        with self._read() as connection:
            found = connection.execute(query).scalar()
        if found is not None:
            return bytes(found)
        with self._write() as connection:
            connection.execute(
                dialect.insert(server_secrets)
                .values(name=name, secret=secrets.token_bytes(_SECRET_BYTES), created_at=now)
                .on_conflict_do_nothing(index_elements=[server_secrets.c.name])
            )
            # Whoever inserted first, every instance now reads the same secret.
            return bytes(connection.execute(query).scalar_one())

"""Revocations, the durable feed: entries with monotonic cursors (their row ids)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, and_, func, insert, select, text

from jotkit.revocation import Revocation
from jotkit.store.engine import Database
from jotkit.store.notices import CHANNEL
from jotkit.store.schema import revocations

__all__ = ["RevocationStore", "insert_revocations"]

# Serializes revocation inserts on PostgreSQL so feed cursors become visible in order.
_REVOCATION_LOCK_ID = 0x6A6F746B


def insert_revocations(
    connection: Connection, entries: Iterable[Revocation], now: float
) -> list[Revocation]:
    """Store ``entries`` in the caller's transaction; each comes back with its cursor."""
    if connection.dialect.name == "postgresql":
        # Without it, a transaction holding a lower id could commit after a poller has
        # already read a higher one, and that poller would never see the lower entry. The
        # NOTIFY reaches every listening server process when (and if) this commits
        # (store/notices.py); same round trip.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:id), pg_notify(:channel, '')"),
            {"id": _REVOCATION_LOCK_ID, "channel": CHANNEL},
        )
    stored = []
    for entry in entries:
        result = connection.execute(
            insert(revocations)
            .values(
                kind=entry.kind,
                value=entry.value,
                not_before=entry.not_before,
                forget_after=entry.forget_after,
                created_at=now,
            )
            .returning(revocations.c.id)
        )
        cursor = int(result.scalar_one())
        stored.append(
            Revocation(entry.kind, entry.value, entry.forget_after, entry.not_before, cursor)
        )
    return stored


class RevocationStore(Database):
    """The revocation feed part of ``Store``."""

    def add_revocation(self, entry: Revocation, *, now: float) -> Revocation:
        """Store one entry (an access token's ``jti``...) and return it with its cursor."""
        with self._write() as connection:
            return insert_revocations(connection, [entry], now)[0]

    def revocations_since(self, cursor: int, *, now: float) -> list[Revocation]:
        """Live entries with a cursor above ``cursor``, in cursor order."""
        with self._read() as connection:
            rows = connection.execute(
                select(revocations)
                .where(and_(revocations.c.id > cursor, revocations.c.forget_after >= now))
                .order_by(revocations.c.id)
            ).all()
        return [Revocation(r.kind, r.value, r.forget_after, r.not_before, int(r.id)) for r in rows]

    def last_cursor(self) -> int:
        """The highest cursor ever stored (0 when none)."""
        with self._read() as connection:
            return int(connection.execute(select(func.max(revocations.c.id))).scalar() or 0)

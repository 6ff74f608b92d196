"""Signing keys: the stored key records and their scheduled retirement."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, insert, select, text, update

from jotkit.store.engine import Database, as_values, from_row
from jotkit.store.schema import signing_keys

__all__ = ["KeyRecord", "KeyStore"]

# pg_advisory_xact_lock key for key rotation ("jotk" + 1; revocations use "jotk").
_ROTATION_LOCK_ID = 0x6A6F746C


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored signing key; ``private_jwk`` may be encrypted (see server/keyring.py)."""

    kid: str
    alg: str
    private_jwk: str
    public_jwk: str
    created_at: float
    activates_at: float
    retired_at: float | None
    remove_after: float | None


class KeyStore(Database):
    """The signing keys part of ``Store``."""

    def signing_keys(self) -> list[KeyRecord]:
        """Every stored key, oldest activation first."""
        with self._read() as connection:
            rows = connection.execute(
                select(signing_keys).order_by(signing_keys.c.activates_at, signing_keys.c.kid)
            ).all()
        return [from_row(KeyRecord, row) for row in rows]

    def add_signing_key(
        self, record: KeyRecord, *, retire: Iterable[tuple[str, float]], after: str | None
    ) -> bool:
        """Store a new key and, in the same transaction, schedule the removal of ``retire``;
        only if the newest stored key is still ``after`` (None: no key yet). False otherwise.

        ``retire`` pairs a kid with the time after which every token it signed has expired.
        The condition keeps two instances that decide to rotate at once from adding two keys:
        the second finds the first's key and adds nothing.
        """
        # On SQLite ``_write`` begins IMMEDIATE: the file's write lock is taken before the
        # check (a deferred BEGIN let two processes on one file both pass it and add two keys).
        with self._write() as connection:
            if connection.dialect.name == "postgresql":
                # Serializes rotations across instances.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ROTATION_LOCK_ID}
                )
            newest = connection.execute(
                select(signing_keys.c.kid)
                .order_by(signing_keys.c.activates_at.desc(), signing_keys.c.kid.desc())
                .limit(1)
            ).scalar()
            if newest != after:
                return False
            connection.execute(insert(signing_keys).values(**as_values(record)))
            for kid, remove_after in retire:
                connection.execute(
                    update(signing_keys)
                    .where(and_(signing_keys.c.kid == kid, signing_keys.c.retired_at.is_(None)))
                    .values(retired_at=record.activates_at, remove_after=remove_after)
                )
        return True

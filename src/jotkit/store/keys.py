"""Signing keys: the stored key records and their scheduled retirement."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, insert, select, update

from jotkit.store.engine import Database, as_values, from_row
from jotkit.store.schema import signing_keys

__all__ = ["KeyRecord", "KeyStore"]


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

    def add_signing_key(self, record: KeyRecord, *, retire: Iterable[tuple[str, float]]) -> None:
        """Store a new key and, in the same transaction, schedule the removal of ``retire``.

        ``retire`` pairs a kid with the time after which every token it signed has expired.
        """
        with self._write() as connection:
            connection.execute(insert(signing_keys).values(**as_values(record)))
            for kid, remove_after in retire:
                connection.execute(
                    update(signing_keys)
                    .where(and_(signing_keys.c.kid == kid, signing_keys.c.retired_at.is_(None)))
                    .values(retired_at=record.activates_at, remove_after=remove_after)
                )

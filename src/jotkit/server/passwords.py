"""argon2id password hashing, with the same cost for unknown users (no enumeration)."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from jotkit.server.settings import Settings

__all__ = ["Passwords"]


class Passwords:
    """Hash and check passwords with argon2id (RFC 9106) at the configured cost."""

    def __init__(self, settings: Settings) -> None:
        """Build the hasher and a decoy hash for unknown accounts."""
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Checking a login for an unknown email against this decoy costs what a real
        # check costs, so response time does not reveal which emails have accounts.
        self._decoy = self._hasher.hash("jotkit decoy password")

    def hash(self, password: str) -> str:
        """An argon2id PHC string for ``password``."""
        return self._hasher.hash(password)

    def check(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with ``stored_hash=None``, burn the same time."""
        try:
            self._hasher.verify(stored_hash or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the stored hash used weaker parameters than configured now."""
        return self._hasher.check_needs_rehash(stored_hash)

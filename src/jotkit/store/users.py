"""User accounts: create, look up, list, change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update

from jotkit.store.engine import Database, as_values, from_row
from jotkit.store.schema import users

__all__ = ["User", "UserStore"]


@dataclass(frozen=True, slots=True)
class User:
    """A user account; ``not_before`` is the sign-out-everywhere watermark."""

    id: str
    email: str
    password_hash: str
    disabled: bool
    scope: str
    created_at: float
    not_before: float


class UserStore(Database):
    """The users part of ``Store``."""

    def add_user(self, email: str, password_hash: str, *, now: float, scope: str = "") -> User:
        """Create a user; ``Conflict`` if the email is taken (emails compare lower-cased)."""
        user = User(uuid.uuid4().hex, email.lower(), password_hash, False, scope, now, 0.0)
        with self._write() as connection:
            connection.execute(insert(users).values(**as_values(user)))
        return user

    def user_by_email(self, email: str) -> User | None:
        """The user with that email (case-insensitive), or None."""
        with self._read() as connection:
            row = connection.execute(select(users).where(users.c.email == email.lower())).first()
        return None if row is None else from_row(User, row)

    def user_by_id(self, user_id: str) -> User | None:
        """The user with that id, or None."""
        with self._read() as connection:
            row = connection.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else from_row(User, row)

    def list_users(self) -> list[User]:
        """Every user, oldest first."""
        with self._read() as connection:
            rows = connection.execute(select(users).order_by(users.c.created_at)).all()
        return [from_row(User, row) for row in rows]

    def user_count(self) -> int:
        """How many users exist."""
        with self._read() as connection:
            return int(connection.execute(select(func.count()).select_from(users)).scalar_one())

    def update_user(self, email: str, **changes: Any) -> bool:
        """Change ``disabled``, ``password_hash`` or ``scope``; False if no such user."""
        allowed = {"disabled", "password_hash", "scope"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"only {sorted(allowed)} can change")
        with self._write() as connection:
            result = connection.execute(
                update(users).where(users.c.email == email.lower()).values(**changes)
            )
        return bool(result.rowcount)

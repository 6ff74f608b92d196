"""Login throttling: failed logins counted per key (an account, an address) in fixed windows."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select, update

from jotkit.store.engine import Database
from jotkit.store.schema import login_failures

__all__ = ["ThrottleStore"]


class ThrottleStore(Database):
    """The login throttling part of ``Store``."""

    def throttle_status(self, keys: Iterable[str], *, now: float, window: float) -> dict[str, int]:
        """Failures counted in the current window for each throttling key."""
        keys = list(keys)
        with self._read() as connection:
            rows = connection.execute(
                select(login_failures).where(login_failures.c.key.in_(keys))
            ).all()
        return {r.key: r.failures for r in rows if r.window_started_at > now - window}

    def window_start(self, key: str) -> float | None:
        """When the current throttling window of ``key`` started, or None."""
        with self._read() as connection:
            return connection.execute(
                select(login_failures.c.window_started_at).where(login_failures.c.key == key)
            ).scalar()

    def record_failure(self, keys: Iterable[str], *, now: float, window: float) -> None:
        """Count one failed login against each key (a new window when the old one ended)."""
        with self._write() as connection:
            for key in keys:
                row = connection.execute(
                    select(login_failures).where(login_failures.c.key == key)
                ).first()
                if row is None:
                    connection.execute(
                        insert(login_failures).values(key=key, window_started_at=now, failures=1)
                    )
                elif row.window_started_at <= now - window:
                    connection.execute(
                        update(login_failures)
                        .where(login_failures.c.key == key)
                        .values(window_started_at=now, failures=1)
                    )
                else:
                    connection.execute(
                        update(login_failures)
                        .where(login_failures.c.key == key)
                        .values(failures=login_failures.c.failures + 1)
                    )

    def clear_failures(self, key: str) -> None:
        """Forget the failures of one key (after a successful login)."""
        with self._write() as connection:
            connection.execute(delete(login_failures).where(login_failures.c.key == key))

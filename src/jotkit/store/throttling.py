"""Login throttling: failed logins counted per key (an account, an address) in fixed windows."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from jotkit.store.engine import Database
from jotkit.store.schema import login_failures

__all__ = ["ThrottleStore"]


class ThrottleStore(Database):
    """The login throttling part of ``Store``."""

    def throttle_status(
        self, keys: Iterable[str], *, now: float, window: float
    ) -> dict[str, tuple[int, float]]:
        """(failures, when the window ends) for each key with failures in its current window."""
        keys = list(keys)
        with self._read() as connection:
            rows = connection.execute(
                select(login_failures).where(login_failures.c.key.in_(keys))
            ).all()
        return {
            r.key: (r.failures, r.window_started_at + window)
            for r in rows
            if r.window_started_at > now - window
        }

    def record_failure(self, keys: Iterable[str], *, now: float, window: float) -> None:
        """Count one failed login against each key (a new window when the old one ended).

        One upsert per key: concurrent failures (threads, instances, ``--workers``) each count
        once, where a select-then-insert let two first failures both insert (a Conflict).
        """
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        ended = login_failures.c.window_started_at <= now - window
        with self._write() as connection:
            for key in sorted(keys):  # one order everywhere: two upserts never deadlock
                upsert = dialect.insert(login_failures).values(
                    key=key, window_started_at=now, failures=1
                )
                connection.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[login_failures.c.key],
                        # Both SET expressions read the row as it was before the update.
                        set_={
                            "failures": case((ended, 1), else_=login_failures.c.failures + 1),
                            "window_started_at": case(
                                (ended, now), else_=login_failures.c.window_started_at
                            ),
                        },
                    )
                )

    def clear_failures(self, key: str) -> None:
        """Forget the failures of one key (after a successful login)."""
        with self._write() as connection:
            connection.execute(delete(login_failures).where(login_failures.c.key == key))

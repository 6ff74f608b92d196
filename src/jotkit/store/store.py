"""The durable store: users, refresh families, signing keys, revocations, login throttling.

One class over SQLAlchemy Core, the same queries on SQLite (the embedded default) and
PostgreSQL. Every multi-row change runs in one transaction, so a failure leaves nothing
half-written. On SQLite, writers of one process are serialized by a lock (SQLite allows one
writer at a time anyway; the lock turns "database is locked" into waiting).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from jotkit.revocation import Revocation
from jotkit.store.schema import (
    families,
    login_failures,
    refresh_tokens,
    revocations,
    signing_keys,
    users,
)

__all__ = [
    "Conflict",
    "Family",
    "KeyRecord",
    "Rotation",
    "Store",
    "StoreError",
    "User",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
# Serializes revocation inserts on PostgreSQL so feed cursors become visible in order.
_REVOCATION_LOCK_ID = 0x6A6F746B


class StoreError(RuntimeError):
    """The database is unreachable or refused an operation; nothing was written."""

    code = "ERR_STORE"


class Conflict(StoreError):
    """The row already exists (a user with that email...)."""

    code = "ERR_CONFLICT"


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


@dataclass(frozen=True, slots=True)
class Family:
    """One session (refresh family); its id is the ``sid`` of the access tokens it yields."""

    id: str
    user_id: str
    created_at: float
    last_used_at: float
    expires_at: float
    revoked_at: float | None
    revoked_reason: str | None
    user_agent: str
    client_address: str


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


Outcome = Literal["ok", "unknown", "expired", "revoked", "reused", "grace", "disabled"]


@dataclass(frozen=True, slots=True)
class Rotation:
    """What presenting a refresh token did: ``outcome`` and, when known, who and which session.

    ``revocation`` is the feed entry written when the outcome revoked the family.
    """

    outcome: Outcome
    family: Family | None = None
    user: User | None = None
    revocation: Revocation | None = None


# The refresh path's statements, built once: constructing a SQLAlchemy statement per call
# cost more than running it (benchmarks/bench_server.py, refresh/s).
_FIND_REFRESH_TOKEN = (
    select(refresh_tokens, families, users)
    .join(families, refresh_tokens.c.family_id == families.c.id)
    .join(users, families.c.user_id == users.c.id)
    .where(refresh_tokens.c.token_hash == bindparam("token_hash"))
)
_SPEND_REFRESH_TOKEN = (
    update(refresh_tokens)
    .where(
        and_(
            refresh_tokens.c.token_hash == bindparam("spent_hash"),
            refresh_tokens.c.spent_at.is_(None),
        )
    )
    .values(spent_at=bindparam("spent_now"))
)
_INSERT_REFRESH_TOKEN = insert(refresh_tokens).values(
    token_hash=bindparam("new_hash"),
    family_id=bindparam("new_family_id"),
    issued_at=bindparam("new_issued_at"),
    expires_at=bindparam("new_expires_at"),
    spent_at=None,
)
_TOUCH_FAMILY = (
    update(families)
    .where(families.c.id == bindparam("touched_id"))
    .values(last_used_at=bindparam("touched_at"))
)


def _row(cls: Any, row: Any) -> Any:
    return cls(**row._mapping)


class Store:
    """All persistence of the auth server; see the module docstring."""

    def __init__(self, url: str) -> None:
        """Open (not migrate) the database at ``url``: sqlite:///path or postgresql://..."""
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        options: dict[str, Any] = {"future": True}
        if self.dialect == "sqlite":
            path = parsed.database
            if path and path != ":memory:":
                _create_private_file(Path(path))
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(parsed, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self._write_lock, self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers a trivial query (for /readyz)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._write_lock, self.engine.begin() as connection:
                yield connection
        except IntegrityError as exc:
            raise Conflict("already exists") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"database error ({type(exc).__name__})") from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"database error ({type(exc).__name__})") from exc

    # -- users --------------------------------------------------------------------------

    def add_user(self, email: str, password_hash: str, *, now: float, scope: str = "") -> User:
        """Create a user; ``Conflict`` if the email is taken (emails compare lower-cased)."""
        user = User(uuid.uuid4().hex, email.lower(), password_hash, False, scope, now, 0.0)
        with self._write() as connection:
            connection.execute(insert(users).values(**_fields(user)))
        return user

    def user_by_email(self, email: str) -> User | None:
        """The user with that email (case-insensitive), or None."""
        with self._read() as connection:
            row = connection.execute(select(users).where(users.c.email == email.lower())).first()
        return None if row is None else _row(User, row)

    def user_by_id(self, user_id: str) -> User | None:
        """The user with that id, or None."""
        with self._read() as connection:
            row = connection.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else _row(User, row)

    def list_users(self) -> list[User]:
        """Every user, oldest first."""
        with self._read() as connection:
            rows = connection.execute(select(users).order_by(users.c.created_at)).all()
        return [_row(User, row) for row in rows]

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

    # -- sessions (refresh families) ------------------------------------------------------

    def create_family(
        self,
        user: User,
        *,
        token_hash: str,
        now: float,
        idle_ttl: float,
        absolute_ttl: float,
        user_agent: str = "",
        client_address: str = "",
    ) -> Family:
        """Start a session with its first refresh token (stored as its hash only)."""
        family = Family(
            uuid.uuid4().hex,
            user.id,
            now,
            now,
            now + absolute_ttl,
            None,
            None,
            user_agent[:256],
            client_address[:64],
        )
        with self._write() as connection:
            connection.execute(insert(families).values(**_fields(family)))
            connection.execute(
                insert(refresh_tokens).values(
                    token_hash=token_hash,
                    family_id=family.id,
                    issued_at=now,
                    expires_at=min(now + idle_ttl, family.expires_at),
                    spent_at=None,
                )
            )
        return family

    def rotate(
        self,
        token_hash: str,
        new_token_hash: str,
        *,
        now: float,
        idle_ttl: float,
        grace: float,
        forget_after: float,
    ) -> Rotation:
        """Spend a refresh token and store its successor, atomically.

        A token spent before (outside ``grace``) is theft: its family is revoked and a ``sid``
        revocation entry (forgotten after ``forget_after``) is written with it. Of two
        concurrent rotations of one token exactly one gets ``ok``.
        """
        with self._write() as connection:
            found = connection.execute(_FIND_REFRESH_TOKEN, {"token_hash": token_hash}).first()
            if found is None:
                return Rotation("unknown")
            family, user = _family_and_user(found)
            if family.revoked_at is not None:
                return Rotation("revoked", family, user)
            spent_at = found._mapping[refresh_tokens.c.spent_at]
            if spent_at is not None:
                if now - spent_at <= grace:
                    return Rotation("grace", family, user)
                entry = self._revoke_family(connection, family.id, "reuse", now, forget_after)
                return Rotation("reused", family, user, entry)
            if user.disabled:
                entry = self._revoke_family(connection, family.id, "disabled", now, forget_after)
                return Rotation("disabled", family, user, entry)
            if found._mapping[refresh_tokens.c.expires_at] <= now or family.expires_at <= now:
                return Rotation("expired", family, user)
            # The WHERE spent_at IS NULL makes the spend atomic: on PostgreSQL a concurrent
            # rotation waits on the row lock, then matches nothing.
            spent = connection.execute(
                _SPEND_REFRESH_TOKEN, {"spent_hash": token_hash, "spent_now": now}
            )
            if spent.rowcount != 1:
                entry = self._revoke_family(connection, family.id, "reuse", now, forget_after)
                return Rotation("reused", family, user, entry)
            connection.execute(
                _INSERT_REFRESH_TOKEN,
                {
                    "new_hash": new_token_hash,
                    "new_family_id": family.id,
                    "new_issued_at": now,
                    "new_expires_at": min(now + idle_ttl, family.expires_at),
                },
            )
            connection.execute(_TOUCH_FAMILY, {"touched_id": family.id, "touched_at": now})
        return Rotation("ok", family, user)

    def find_refresh_token(
        self, token_hash: str
    ) -> tuple[Family, User, float, float | None] | None:
        """(family, user, expires_at, spent_at) for a refresh token hash, or None."""
        with self._read() as connection:
            found = connection.execute(_FIND_REFRESH_TOKEN, {"token_hash": token_hash}).first()
        if found is None:
            return None
        family, user = _family_and_user(found)
        mapping = found._mapping
        return (
            family,
            user,
            mapping[refresh_tokens.c.expires_at],
            mapping[refresh_tokens.c.spent_at],
        )

    def family(self, sid: str) -> Family | None:
        """The session with that id, or None."""
        with self._read() as connection:
            row = connection.execute(select(families).where(families.c.id == sid)).first()
        return None if row is None else _row(Family, row)

    def sessions(self, user_id: str, *, now: float) -> list[Family]:
        """The user's live sessions (not revoked, not past their absolute lifetime)."""
        with self._read() as connection:
            rows = connection.execute(
                select(families)
                .where(
                    and_(
                        families.c.user_id == user_id,
                        families.c.revoked_at.is_(None),
                        families.c.expires_at > now,
                    )
                )
                .order_by(families.c.created_at)
            ).all()
        return [_row(Family, row) for row in rows]

    def revoke_family(
        self, sid: str, *, reason: str, now: float, forget_after: float
    ) -> Revocation | None:
        """Revoke one session and write its ``sid`` entry; None if unknown or already revoked."""
        with self._write() as connection:
            return self._revoke_family(connection, sid, reason, now, forget_after)

    def _revoke_family(
        self, connection: Connection, sid: str, reason: str, now: float, forget_after: float
    ) -> Revocation | None:
        revoked = connection.execute(
            update(families)
            .where(and_(families.c.id == sid, families.c.revoked_at.is_(None)))
            .values(revoked_at=now, revoked_reason=reason)
        )
        if revoked.rowcount != 1:
            return None
        return self._add_revocations(connection, [Revocation("sid", sid, forget_after)], now)[0]

    def revoke_user(
        self, user_id: str, *, reason: str, now: float, forget_after: float
    ) -> list[Revocation]:
        """Sign out everywhere: revoke every live session and raise the user's watermark.

        The watermark is a whole second (``iat`` is one): tokens issued earlier are dead;
        the ``sid`` entries cover those issued within the current second.
        """
        watermark = float(int(now))
        with self._write() as connection:
            live = connection.execute(
                select(families.c.id).where(
                    and_(families.c.user_id == user_id, families.c.revoked_at.is_(None))
                )
            ).all()
            connection.execute(
                update(families)
                .where(and_(families.c.user_id == user_id, families.c.revoked_at.is_(None)))
                .values(revoked_at=now, revoked_reason=reason)
            )
            connection.execute(
                update(users).where(users.c.id == user_id).values(not_before=watermark)
            )
            entries = [Revocation("sid", row.id, forget_after) for row in live]
            entries.append(Revocation("sub", user_id, forget_after, watermark))
            return self._add_revocations(connection, entries, now)

    # -- revocations (the durable feed) ---------------------------------------------------

    def add_revocation(self, entry: Revocation, *, now: float) -> Revocation:
        """Store one entry (an access token's ``jti``...) and return it with its cursor."""
        with self._write() as connection:
            return self._add_revocations(connection, [entry], now)[0]

    def _add_revocations(
        self, connection: Connection, entries: Iterable[Revocation], now: float
    ) -> list[Revocation]:
        if self.dialect == "postgresql":
            # Without it, a transaction holding a lower id could commit after a poller has
            # already read a higher one, and that poller would never see the lower entry.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _REVOCATION_LOCK_ID}
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
                delete(signing_keys).where(signing_keys.c.remove_after < now)
            ).rowcount
        return int(gone)

    # -- signing keys ---------------------------------------------------------------------

    def signing_keys(self) -> list[KeyRecord]:
        """Every stored key, oldest activation first."""
        with self._read() as connection:
            rows = connection.execute(
                select(signing_keys).order_by(signing_keys.c.activates_at, signing_keys.c.kid)
            ).all()
        return [_row(KeyRecord, row) for row in rows]

    def add_signing_key(self, record: KeyRecord, *, retire: Iterable[tuple[str, float]]) -> None:
        """Store a new key and, in the same transaction, schedule the removal of ``retire``.

        ``retire`` pairs a kid with the time after which every token it signed has expired.
        """
        with self._write() as connection:
            connection.execute(insert(signing_keys).values(**_fields(record)))
            for kid, remove_after in retire:
                connection.execute(
                    update(signing_keys)
                    .where(and_(signing_keys.c.kid == kid, signing_keys.c.retired_at.is_(None)))
                    .values(retired_at=record.activates_at, remove_after=remove_after)
                )

    # -- login throttling -----------------------------------------------------------------

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


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _family_and_user(found: Any) -> tuple[Family, User]:
    mapping = found._mapping
    family = Family(
        id=mapping[families.c.id],
        user_id=mapping[families.c.user_id],
        created_at=mapping[families.c.created_at],
        last_used_at=mapping[families.c.last_used_at],
        expires_at=mapping[families.c.expires_at],
        revoked_at=mapping[families.c.revoked_at],
        revoked_reason=mapping[families.c.revoked_reason],
        user_agent=mapping[families.c.user_agent],
        client_address=mapping[families.c.client_address],
    )
    user = User(**{column.name: mapping[column] for column in users.c})
    return family, user


def _create_private_file(path: Path) -> None:
    # The embedded store holds password hashes and (maybe unencrypted) private keys:
    # owner-only from the first byte, not chmod-ed after the fact.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()

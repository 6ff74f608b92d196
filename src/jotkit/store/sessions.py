"""Sessions: refresh families, their rotating refresh tokens, and revoking them.

A family is one login on one device; its id is the ``sid`` of every access token it yields.
Revoking a family (or all of a user's) writes the matching feed entries in the same
transaction, so a revoked session is never missing from the feed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from jotkit.revocation import Revocation
from jotkit.store.engine import Database, as_values, from_row
from jotkit.store.revocations import insert_revocations
from jotkit.store.schema import families, refresh_tokens, users
from jotkit.store.users import User

__all__ = ["Family", "Outcome", "Presented", "Rotation", "SessionStore"]


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
    dpop_jkt: str | None = None  # the DPoP key the session is bound to (RFC 9449 §5)


Outcome = Literal[
    "ok",
    "previous",
    "unknown",
    "expired",
    "revoked",
    "reused",
    "disabled",
    "key_mismatch",
    "unbound",
]


@dataclass(frozen=True, slots=True)
class Rotation:
    """What presenting a refresh token did: ``outcome`` and, when known, who and which session.

    ``revocation`` is the feed entry written when the outcome revoked the family
    (``reused``, ``disabled``, ``key_mismatch``).
    ``sealed_successor`` (outcome ``previous``) is the family's current refresh token, sealed
    under a key only the presented token yields.
    """

    outcome: Outcome
    family: Family | None = None
    user: User | None = None
    revocation: Revocation | None = None
    sealed_successor: bytes | None = None


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
    .values(
        spent_at=bindparam("spent_now"),
        successor_hash=bindparam("successor_hash"),
        sealed_successor=bindparam("sealed_successor"),
    )
)
_FIND_SUCCESSOR = select(refresh_tokens.c.spent_at, refresh_tokens.c.expires_at).where(
    refresh_tokens.c.token_hash == bindparam("successor_hash")
)
_INSERT_REFRESH_TOKEN = insert(refresh_tokens).values(
    token_hash=bindparam("new_hash"),
    family_id=bindparam("new_family_id"),
    issued_at=bindparam("new_issued_at"),
    expires_at=bindparam("new_expires_at"),
    spent_at=None,
)

# PostgreSQL's whole successful rotation in one statement, run on its own (autocommit): one
# round trip where BEGIN, SELECT, UPDATE, INSERT and COMMIT took five, and less CPU in both the
# server and PostgreSQL (benchmarks/count_refresh.py, bench_scale.py). It spends the token only
# if every check of ``_refusal`` passes; anything else (unknown, spent, expired, revoked,
# disabled) matches no row and takes the general path, which judges it as before. Concurrent
# rotations of one token: the UPDATE waits on the row lock, re-checks ``spent_at IS NULL`` on
# the committed row and matches nothing, so exactly one spends it. The INSERT runs in the same
# statement, hence the same transaction: a token is never spent without its successor stored.
_FAMILY_FIELDS = [field.name for field in dataclasses.fields(Family)]
_USER_FIELDS = [field.name for field in dataclasses.fields(User)]
# psycopg's own parameter style: the event loop's connections (store/loop.py) run this text
# as it is, and the thread path through SQLAlchemy's exec_driver_sql. Only the schema's own
# column names are formatted in: no input reaches the SQL text. The RETURNING columns are
# aliased (a family and a user both have an id) and come in the records' field order.
_ROTATE_IN_ONE_STATEMENT = f"""
    WITH spent AS (
        UPDATE refresh_tokens AS t
        SET spent_at = %(now)s, successor_hash = %(successor_hash)s,
            sealed_successor = %(sealed_successor)s
        FROM families AS f, users AS u
        WHERE t.token_hash = %(token_hash)s AND t.spent_at IS NULL AND t.expires_at > %(now)s
          AND f.id = t.family_id AND f.revoked_at IS NULL AND f.expires_at > %(now)s
          AND u.id = f.user_id AND NOT u.disabled
          -- DPoP (see rotate): only a rotation the binding allows; the rest is judged apart.
          AND (f.dpop_jkt = %(dpop_jkt)s OR (f.dpop_jkt IS NULL AND %(bearer_allowed)s))
        RETURNING {", ".join(f"f.{name} AS f_{name}" for name in _FAMILY_FIELDS)},
                  {", ".join(f"u.{name} AS u_{name}" for name in _USER_FIELDS)}
    ), successor AS (
        INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at)
        SELECT %(successor_hash)s, f_id, %(now)s, LEAST(%(now)s + %(idle_ttl)s, f_expires_at)
        FROM spent
    )
    SELECT * FROM spent
    """  # noqa: S608


@dataclass(frozen=True, slots=True)
class Presented:
    """A refresh token presented for rotation, and what rotating it stores (``rotate``)."""

    token_hash: str
    new_token_hash: str
    sealed_successor: bytes
    now: float
    idle_ttl: float
    grace: float
    forget_after: float
    dpop_jkt: str | None = None
    bearer_allowed: bool = True

    def one_statement_parameters(self) -> dict[str, Any]:
        """The parameters of ``_ROTATE_IN_ONE_STATEMENT``."""
        return {
            "token_hash": self.token_hash,
            "successor_hash": self.new_token_hash,
            "sealed_successor": self.sealed_successor,
            "now": self.now,
            "idle_ttl": self.idle_ttl,
            "dpop_jkt": self.dpop_jkt,
            "bearer_allowed": self.bearer_allowed,
        }


def _rotated(row: Sequence[Any]) -> Rotation:
    """The ``ok`` rotation of the one statement's row: the family's fields, then the user's."""
    split = len(_FAMILY_FIELDS)
    return Rotation("ok", Family(*row[:split]), User(*row[split:]))


class SessionStore(Database):
    """The sessions part of ``Store``."""

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
        dpop_jkt: str | None = None,
    ) -> Family:
        """Start a session with its first refresh token (stored as its hash only), bound to
        the DPoP key with thumbprint ``dpop_jkt`` if given."""
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
            dpop_jkt,
        )
        with self._write() as connection:
            connection.execute(insert(families).values(**as_values(family)))
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

    def rotate(self, presented: Presented) -> Rotation:
        """Spend a refresh token and store its successor, atomically.

        DPoP (RFC 9449 §5): ``dpop_jkt`` is the thumbprint of the key that signed the request's
        proof (None: no proof). A bound family presented with another key or none is theft
        like a reuse: revoked, outcome ``key_mismatch``. An unbound family stays a bearer
        session, or (``bearer_allowed`` false) gets ``unbound`` and is left as it was.

        The reuse window (docs/lifecycle.md): the token spent just before the current one,
        presented again within ``grace`` seconds of its spend, gets ``previous`` and the
        current token (``sealed_successor`` as stored by the rotation that spent it). Any other
        spent token is theft: its family is revoked and a ``sid`` revocation entry (forgotten
        after ``forget_after``) is written with it. Of concurrent rotations of one token exactly
        one gets ``ok``; the others are judged after it, as presentations of the previous token.
        A family never has two unspent refresh tokens.
        """
        if self.dialect == "postgresql":
            with self._statement() as connection:
                row = connection.exec_driver_sql(
                    _ROTATE_IN_ONE_STATEMENT, presented.one_statement_parameters()
                ).first()
            if row is not None:
                return _rotated(row)
        return self.judge(presented)

    async def rotate_on_loop(self, presented: Presented) -> Rotation | None:
        """``rotate``'s common case awaited on the event loop (``open_on_loop``): the ``ok``
        rotation, or None when the one statement did not settle it (or there is no loop
        pool): then ``judge``, a blocking call, decides."""
        if self.on_loop is None:
            return None
        row = await self.on_loop.fetch_one(
            _ROTATE_IN_ONE_STATEMENT, presented.one_statement_parameters()
        )
        return None if row is None else _rotated(row)

    def judge(self, presented: Presented) -> Rotation:
        """``rotate``'s general path: every outcome, in one transaction."""
        find = {"token_hash": presented.token_hash}
        with self._write() as connection:
            found = connection.execute(_FIND_REFRESH_TOKEN, find).first()
            if found is not None:
                refused = self._key_refusal(connection, found, presented)
                if refused is not None:
                    return refused
            if found is not None and found._mapping[refresh_tokens.c.spent_at] is None:
                rotation = self._spend(connection, found, presented)
                if rotation is not None:
                    return rotation
                # A concurrent rotation of this token committed first (PostgreSQL, READ
                # COMMITTED: this statement sees its commit): judge the token as it left it.
                found = connection.execute(_FIND_REFRESH_TOKEN, find).first()
            if found is None:
                return Rotation("unknown")
            family, user = _family_and_user(found)
            if family.revoked_at is not None:
                return Rotation("revoked", family, user)
            return self._replay(connection, found, family, user, presented)

    def _key_refusal(
        self, connection: Connection, found: Any, presented: Presented
    ) -> Rotation | None:
        """The DPoP binding rule, before anything else is judged (see ``rotate``)."""
        family, user = _family_and_user(found)
        if family.revoked_at is not None:
            return None  # already dead: answered as revoked
        if family.dpop_jkt is None:
            return None if presented.bearer_allowed else Rotation("unbound", family, user)
        if presented.dpop_jkt == family.dpop_jkt:
            return None
        entry = self._revoke_family(
            connection, family.id, "dpop_key_mismatch", presented.now, presented.forget_after
        )
        return Rotation("key_mismatch", family, user, entry)

    def _spend(self, connection: Connection, found: Any, presented: Presented) -> Rotation | None:
        """Rotate an unspent token; None if a concurrent rotation spent it first."""
        family, user = _family_and_user(found)
        expires_at = found._mapping[refresh_tokens.c.expires_at]
        refused = self._refusal(connection, family, user, expires_at, presented)
        if refused is not None:
            return refused
        token_hash = found._mapping[refresh_tokens.c.token_hash]
        # WHERE spent_at IS NULL makes the spend atomic: on PostgreSQL a concurrent rotation
        # waits on the row lock, then matches nothing.
        spent = connection.execute(
            _SPEND_REFRESH_TOKEN,
            {
                "spent_hash": token_hash,
                "spent_now": presented.now,
                "successor_hash": presented.new_token_hash,
                "sealed_successor": presented.sealed_successor,
            },
        )
        if spent.rowcount != 1:
            return None
        connection.execute(
            _INSERT_REFRESH_TOKEN,
            {
                "new_hash": presented.new_token_hash,
                "new_family_id": family.id,
                "new_issued_at": presented.now,
                "new_expires_at": min(presented.now + presented.idle_ttl, family.expires_at),
            },
        )
        return Rotation("ok", family, user)

    def _replay(
        self,
        connection: Connection,
        found: Any,
        family: Family,
        user: User,
        presented: Presented,
    ) -> Rotation:
        """A spent token presented again: the previous token within the grace, else theft."""
        spent = found._mapping
        successor = None
        grace = presented.grace
        # grace 0 means none: a concurrent spend may carry a later clock than ours.
        if grace > 0 and presented.now - spent[refresh_tokens.c.spent_at] <= grace:
            successor = connection.execute(
                _FIND_SUCCESSOR, {"successor_hash": spent[refresh_tokens.c.successor_hash]}
            ).first()
        # Only the token just before the current (unspent) one; an older one is theft.
        if successor is not None and successor.spent_at is None:
            refused = self._refusal(connection, family, user, successor.expires_at, presented)
            if refused is not None:
                return refused
            sealed = spent[refresh_tokens.c.sealed_successor]
            return Rotation("previous", family, user, sealed_successor=sealed)
        entry = self._revoke_family(
            connection, family.id, "reuse", presented.now, presented.forget_after
        )
        return Rotation("reused", family, user, entry)

    def _refusal(
        self,
        connection: Connection,
        family: Family,
        user: User,
        expires_at: float,
        presented: Presented,
    ) -> Rotation | None:
        """Why a live token (expiring at ``expires_at``) gets no new pair, or None."""
        now = presented.now
        if family.revoked_at is not None:
            return Rotation("revoked", family, user)
        if user.disabled:
            entry = self._revoke_family(
                connection, family.id, "disabled", now, presented.forget_after
            )
            return Rotation("disabled", family, user, entry)
        if expires_at <= now or family.expires_at <= now:
            return Rotation("expired", family, user)
        return None

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
        return None if row is None else from_row(Family, row)

    def sessions(self, user_id: str, *, now: float) -> list[Family]:
        """The user's live sessions (not revoked, not past their absolute lifetime).

        ``last_used_at`` is the issue time of the session's newest refresh token: every
        refresh stores one, so the refresh path need not also update the family row.
        """
        last_used = func.max(refresh_tokens.c.issued_at).label("last_refresh")
        with self._read() as connection:
            rows = connection.execute(
                select(families, last_used)
                .join(refresh_tokens, refresh_tokens.c.family_id == families.c.id)
                .where(
                    and_(
                        families.c.user_id == user_id,
                        families.c.revoked_at.is_(None),
                        families.c.expires_at > now,
                    )
                )
                .group_by(*families.c)
                .order_by(families.c.created_at)
            ).all()
        return [
            Family(
                **{
                    **{column.name: row._mapping[column] for column in families.c},
                    "last_used_at": row.last_refresh,
                }
            )
            for row in rows
        ]

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
        return insert_revocations(connection, [Revocation("sid", sid, forget_after)], now)[0]

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
            return insert_revocations(connection, entries, now)


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
        dpop_jkt=mapping[families.c.dpop_jkt],
    )
    user = User(**{column.name: mapping[column] for column in users.c})
    return family, user

"""Revocation entries and the in-memory set every verifier checks on every request.

Three kinds of entry, each matching access tokens by one claim:

- ``jti``: one token (RFC 7009 revocation of an access token);
- ``sid``: every token of one session, i.e. one refresh family (logout, reuse detection);
- ``sub``: a per-user not-before watermark: tokens of that user with ``iat`` < ``not_before``
  (sign out everywhere).

Each entry carries ``forget_after``, the time after which no token it can match is still
valid (their ``exp`` has passed), so the set only ever holds what can still matter.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from jotkit.codes import ERR_REVOCATION_FEED_STALE, ERR_REVOCATION_SET_FULL
from jotkit.jose.errors import JoseError, RevokedToken

__all__ = ["DEFAULT_MAX_ENTRIES", "KINDS", "FeedStale", "Revocation", "RevocationSet", "SetFull"]

Kind = Literal["jti", "sid", "sub"]
KINDS: frozenset[str] = frozenset(("jti", "sid", "sub"))

# ~160 MB of RSS (about 160 bytes an entry, benchmarks/bench_revocation_memory.py): at the
# default 900 s access tokens, a million live entries takes a sustained ~1,000 revocations/s.
DEFAULT_MAX_ENTRIES = 1_000_000
# While full, an add prunes expired entries at most this often (a prune is O(entries)).
_FULL_PRUNE_SECONDS = 1.0


class FeedStale(JoseError):
    """The revocation feed has not been heard from for longer than the staleness bound.

    Raised (fail closed, the default) instead of accepting a token the verifier can no longer
    prove is unrevoked.
    """

    code = ERR_REVOCATION_FEED_STALE


class SetFull(JoseError):
    """The set reached ``max_entries`` and could not hold an entry that may still match a live
    token; every token is refused (fail closed) until that entry would have expired.
    """

    code = ERR_REVOCATION_SET_FULL


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revocation: ``kind`` and ``value`` say what it matches, ``cursor`` its feed order.

    ``not_before`` is used by ``sub`` entries only (a NumericDate); ``forget_after`` is the
    NumericDate after which the entry can be dropped; ``cursor`` is the store's sequence
    number (0 when the entry has not been stored yet).
    """

    kind: Kind
    value: str
    forget_after: float
    not_before: float = 0
    cursor: int = 0

    def to_json(self) -> dict[str, Any]:
        """The wire form used by every transport (HTTP feed, Redis)."""
        return {
            "kind": self.kind,
            "value": self.value,
            "not_before": self.not_before,
            "forget_after": self.forget_after,
            "cursor": self.cursor,
        }

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Revocation:
        """Parse the wire form; ValueError on anything that is not a well-formed entry."""
        kind = entry.get("kind")
        value = entry.get("value")
        if (
            not isinstance(kind, str)
            or kind not in KINDS
            or not isinstance(value, str)
            or not value
        ):
            raise ValueError("revocation entry needs a kind (jti|sid|sub) and a value")
        numbers = [entry.get("forget_after"), entry.get("not_before", 0)]
        cursor = entry.get("cursor", 0)
        if (
            any(type(n) not in (int, float) or not math.isfinite(n) for n in numbers)
            or type(cursor) is not int
        ):
            # NaN would never compare as past its forget_after: an entry held for ever.
            raise ValueError("revocation entry times must be finite numbers, cursor an integer")
        return cls(cast(Kind, kind), value, float(numbers[0]), float(numbers[1]), cursor)


class RevocationSet:
    """The live revocation entries, held in memory and checked at dictionary cost.

    ``is_revoked(claims)`` is the ``Verifier`` hook. Freshness: a transport calls ``heard()``
    whenever it hears from the feed (entries or heartbeat). With ``max_staleness_seconds`` set,
    a set not heard from for longer fails closed (raises ``FeedStale``) unless
    ``fail_open=True``, in which case it accepts what it knows. A new set has not heard from
    its feed yet: with a bound, it refuses until the first catch-up, so a restarted verifier
    never accepts a token revoked while it was down.

    Memory is bounded by ``max_entries`` (None: no bound). A new entry that does not fit once
    expired entries are pruned is not held, and the set then refuses every token (``SetFull``,
    fail closed, whatever ``fail_open`` says) until that entry's ``forget_after`` has passed:
    dropping it silently would accept the token it revokes. ``refused_until`` says until when.
    Writers (``add``, ``prune``, ``entries``) may run on different threads.
    """

    __slots__ = (
        "_clock",
        "_jti",
        "_last_full_prune",
        "_last_heard",
        "_lock",
        "_monotonic",
        "_sid",
        "_sub",
        "cursor",
        "fail_open",
        "max_entries",
        "max_staleness_seconds",
        "not_held",
        "refused_until",
    )

    def __init__(
        self,
        entries: Iterable[Revocation] = (),
        *,
        max_staleness_seconds: float | None = None,
        fail_open: bool = False,
        max_entries: int | None = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start with ``entries``, not yet heard from the feed (see the class docstring)."""
        self._jti: dict[str, float] = {}
        self._sid: dict[str, float] = {}
        self._sub: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.cursor = 0
        self.max_staleness_seconds = max_staleness_seconds
        self.fail_open = fail_open
        self.max_entries = max_entries
        # 0.0 (falsy) until an entry could not be held: the hot path tests it and reads no clock.
        self.refused_until = 0.0
        self.not_held = 0  # entries not held because the set was full (a counter)
        self._last_full_prune = -math.inf
        self._clock = clock
        self._monotonic = monotonic
        self._last_heard = -math.inf
        for entry in entries:
            self.add(entry)

    def add(self, entry: Revocation) -> None:
        """Apply one entry; applying it twice is harmless (transports may replay)."""
        with self._lock:
            if entry.cursor > self.cursor:
                self.cursor = entry.cursor
            table: dict[str, Any] = (
                self._jti
                if entry.kind == "jti"
                else self._sid
                if entry.kind == "sid"
                else self._sub
            )
            if entry.value not in table and not self._room_for_one():
                self.not_held += 1
                self.refused_until = max(self.refused_until, entry.forget_after)
                return
            if entry.kind == "sub":
                old_not_before, old_forget = self._sub.get(entry.value, (0.0, 0.0))
                self._sub[entry.value] = (
                    max(old_not_before, entry.not_before),
                    max(old_forget, entry.forget_after),
                )
            else:
                table[entry.value] = max(entry.forget_after, table.get(entry.value, 0))

    def _room_for_one(self) -> bool:
        """True when one more entry fits, pruning expired ones (not too often) to make room."""
        bound = self.max_entries
        if bound is None or len(self) < bound:
            return True
        if self._monotonic() - self._last_full_prune >= _FULL_PRUNE_SECONDS:
            self._last_full_prune = self._monotonic()
            self._prune(self._clock())
        return len(self) < bound

    def heard(self) -> None:
        """Record that the feed is alive (an entry or a heartbeat arrived)."""
        self._last_heard = self._monotonic()

    def unheard(self) -> None:
        """Record that the feed lost what it held (Redis restarted empty, say): the set is
        stale, and fail-closed refuses tokens, until the feed is heard from again."""
        self._last_heard = -math.inf

    @property
    def staleness_seconds(self) -> float:
        """Seconds since the feed was last heard from."""
        return self._monotonic() - self._last_heard

    @property
    def is_stale(self) -> bool:
        """True when a staleness bound is set and has been exceeded."""
        bound = self.max_staleness_seconds
        return bound is not None and self._monotonic() - self._last_heard > bound

    @property
    def is_full(self) -> bool:
        """True while tokens are refused because an entry could not be held."""
        return bool(self.refused_until) and self.refused_until >= self._clock()

    def _refuse_while_full(self) -> None:
        now = self._clock()
        with self._lock:  # an add may be raising it right now: never reset a newer deadline
            if self.refused_until >= now:
                raise SetFull(
                    f"revocation set full ({self.max_entries} entries): refusing tokens until "
                    f"{self.refused_until:.0f}, when the entries it could not hold expire"
                )
            self.refused_until = 0.0

    def prune(self, now: float | None = None) -> int:
        """Forget entries whose tokens have all expired; returns how many were dropped."""
        with self._lock:
            return self._prune(self._clock() if now is None else now)

    def _prune(self, now: float) -> int:
        # Under the lock: a comprehension over a dict another thread inserts into can raise
        # "dictionary changed size during iteration".
        dropped = 0
        for table in (self._jti, self._sid):
            for value in [v for v, forget in table.items() if forget < now]:
                del table[value]
                dropped += 1
        for sub in [s for s, (_, forget) in self._sub.items() if forget < now]:
            del self._sub[sub]
            dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._jti) + len(self._sid) + len(self._sub)

    def entries(self) -> list[Revocation]:
        """A snapshot of the live entries (cursor 0: order is not kept in memory)."""
        with self._lock:
            return [
                *(Revocation("jti", v, f) for v, f in self._jti.items()),
                *(Revocation("sid", v, f) for v, f in self._sid.items()),
                *(Revocation("sub", v, f, nb) for v, (nb, f) in self._sub.items()),
            ]

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """The ``Verifier`` hook: raises RevokedToken (or FeedStale) when a token must die."""
        bound = self.max_staleness_seconds
        if (
            bound is not None
            and not self.fail_open
            and self._monotonic() - self._last_heard > bound
        ):
            if self._last_heard == -math.inf:
                raise FeedStale(
                    "revocation feed not loaded yet (or lost its data since); "
                    "refusing tokens until it is"
                )
            raise FeedStale(
                f"revocation feed not heard from for {self.staleness_seconds:.1f} s "
                f"(bound {bound:g} s); refusing tokens until it is back"
            )
        if self.refused_until:  # 0.0 unless the set overflowed: no clock read otherwise
            self._refuse_while_full()
        # Three dict lookups: this runs on every request, cached token or not.
        jti = claims.get("jti")
        if jti is not None and jti in self._jti:
            raise RevokedToken("token revoked (jti)")
        sid = claims.get("sid")
        if sid is not None and sid in self._sid:
            raise RevokedToken("session revoked (sid): signed out or refresh token reused")
        sub = claims.get("sub")
        if sub is not None and sub in self._sub:
            iat = claims.get("iat")
            # A token without a numeric iat cannot prove it was issued after the watermark.
            if not isinstance(iat, int | float) or iat < self._sub[sub][0]:
                raise RevokedToken("token issued before the user signed out everywhere")
        return False

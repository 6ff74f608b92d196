"""A reusable verification policy with a cache of verified tokens.

A resource server sees the same access token many times in its short life. Once a token's
signature and claims have checked out, the ``Verifier`` remembers it (by its exact text) and
on the next sighting only re-checks what can change with time: expiry, not-before, max_age,
and the revocation hook. Memory is bounded by ``cache_size`` entries.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from jotkit.jose.claims import check_typ, numeric_date
from jotkit.jose.claims import validate as validate_claims
from jotkit.jose.errors import JoseError, MalformedToken, RevokedToken
from jotkit.jose.jws import DEFAULT_MAX_TOKEN_BYTES, _verify_compact
from jotkit.jose.jwt import decode_claims
from jotkit.jose.keys import Key, KeySet

__all__ = ["RevocationCheck", "Verifier"]

RevocationCheck = Callable[[Mapping[str, Any]], bool]
"""Called with the claims of every token that passed; True (or raising a JoseError) rejects."""

_INFINITY = float("inf")


class Verifier:
    """Verify JWTs against fixed keys and one policy, caching what has been verified.

    The keywords mean what they mean for ``jwt.verify``. ``is_revoked`` runs on every call,
    cached or not. ``clock`` returns the current time in seconds since the epoch.
    """

    __slots__ = (
        "_cache",
        "_cache_size",
        "_clock",
        "_is_revoked",
        "_keys",
        "algorithms",
        "audience",
        "issuer",
        "leeway",
        "max_age",
        "max_token_bytes",
        "require",
        "subject",
        "typ",
    )

    def __init__(
        self,
        keys: Key | KeySet,
        *,
        algorithms: Collection[str] | None = None,
        issuer: str | Collection[str] | None = None,
        audience: str | Collection[str] | None = None,
        subject: str | None = None,
        typ: str | None = None,
        leeway: float = 0,
        max_age: float | None = None,
        require: Collection[str] = ("exp",),
        cache_size: int = 4096,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        is_revoked: RevocationCheck | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Fix the keys and the policy; nothing about them is read from tokens."""
        if not isinstance(keys, Key | KeySet):
            raise TypeError("keys must be a Key or a KeySet")
        self._keys = keys
        self.algorithms = (
            frozenset((algorithms,) if isinstance(algorithms, str) else algorithms)
            if algorithms is not None
            else None
        )
        self.issuer = issuer if issuer is None or isinstance(issuer, str) else frozenset(issuer)
        self.audience = (
            audience if audience is None or isinstance(audience, str) else frozenset(audience)
        )
        self.subject = subject
        self.typ = typ
        self.leeway = leeway
        self.max_age = max_age
        self.require = tuple(require)
        self.max_token_bytes = max_token_bytes
        self._is_revoked = is_revoked
        self._clock = clock
        self._cache_size = max(0, cache_size)
        # token text -> (claims, valid_from, valid_until): the time window in which the cached
        # verdict still holds, with the leeway already applied.
        self._cache: dict[str, tuple[dict[str, Any], float, float]] = {}

    @property
    def keys(self) -> Key | KeySet:
        """The trusted keys. Setting new keys (a JWKS refresh) empties the cache."""
        return self._keys

    @keys.setter
    def keys(self, keys: Key | KeySet) -> None:
        if not isinstance(keys, Key | KeySet):
            raise TypeError("keys must be a Key or a KeySet")
        self._keys = keys
        self._cache.clear()

    def verify(self, token: str | bytes) -> dict[str, Any]:
        """Verify a JWT against this policy and return (a copy of) its claims.

        Raises only JoseError: ``RevokedToken`` when the revocation hook says so.
        """
        try:
            hit = self._cache.get(token)  # type: ignore[arg-type]
        except TypeError:  # unhashable junk; the full path rejects it properly
            hit = None
        if hit is not None:
            claims, valid_from, valid_until = hit
            now = self._clock()
            # The hot path: no parsing, no signature, two comparisons and the revocation hook.
            if valid_from <= now < valid_until:
                if self._is_revoked is not None and self._is_revoked(claims):
                    raise RevokedToken("token has been revoked")
                return claims.copy()
            del self._cache[token]  # type: ignore[arg-type]
        return self._verify_fully(token)

    def _verify_fully(self, token: Any) -> dict[str, Any]:
        try:
            header, payload_segment, _ = _verify_compact(
                token, self._keys, self.algorithms, self.max_token_bytes
            )
            claims = decode_claims(payload_segment)
            if self.typ is not None:
                check_typ(header, self.typ)
            now = self._clock()
            validate_claims(
                claims,
                now=now,
                leeway=self.leeway,
                issuer=self.issuer,
                audience=self.audience,
                subject=self.subject,
                max_age=self.max_age,
                require=self.require,
            )
            if self._is_revoked is not None and self._is_revoked(claims):
                raise RevokedToken("token has been revoked")
        except JoseError:
            raise
        except Exception as exc:  # a bug (ours or a hook's) must not leak as a non-JoseError
            raise MalformedToken(f"token could not be processed ({type(exc).__name__})") from None
        if self._cache_size:
            self._remember(token if type(token) is str else bytes(token).decode(), claims)
        return claims.copy()

    def _remember(self, token: str, claims: dict[str, Any]) -> None:
        exp = numeric_date(claims, "exp")
        nbf = numeric_date(claims, "nbf")
        valid_until = _INFINITY if exp is None else exp + self.leeway
        if self.max_age is not None:
            iat = numeric_date(claims, "iat") or 0
            valid_until = min(valid_until, iat + self.max_age + self.leeway)
        valid_from = -_INFINITY if nbf is None else nbf - self.leeway
        cache = self._cache
        if len(cache) >= self._cache_size:
            # FIFO eviction: insertion order is dict order; an old token is the likeliest dead.
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del cache[next(iter(cache))]
        cache[token] = (claims, valid_from, valid_until)

    def clear_cache(self) -> None:
        """Forget every verified token (the next sighting of each is verified in full)."""
        self._cache.clear()

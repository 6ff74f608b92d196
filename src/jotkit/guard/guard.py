"""The ``Guard``: one verification policy for a resource server, built on ``jose.Verifier``.

Per request the guard finds the token (RFC 6750 header or a cookie), verifies it through the
Verifier's cache (a token seen before costs two comparisons and the revocation lookups), and
returns its ``Claims``. Keys are fixed, or fetched from the issuer (``RemoteJWKS``) in the
background: the steady state never touches the network.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Protocol, TypeVar

from jotkit.guard.bearer import request_token
from jotkit.guard.claims import Claims
from jotkit.guard.errors import Challenge, challenge
from jotkit.guard.jwks import RemoteJWKS
from jotkit.jose.errors import JoseError, KeyNotFound
from jotkit.jose.jws import DEFAULT_MAX_TOKEN_BYTES
from jotkit.jose.keys import Key
from jotkit.jose.keyset import KeySet
from jotkit.jose.verifier import Verifier
from jotkit.revocation.entries import RevocationSet

__all__ = ["Feed", "Guard"]

# RFC 9068 §2.2 requires these of an access token (client_id too, but other issuers vary);
# iat also makes per-user watermarks decidable (a token without iat cannot prove it is newer).
_REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti")
_View = TypeVar("_View", bound=Callable[..., Any])


class Feed(Protocol):
    """A transport that keeps a RevocationSet up to date (HTTP poll, Redis pub/sub)."""

    def start(self) -> Any:
        """Begin feeding (may return an awaitable or nothing)."""

    def close(self) -> Any:
        """Stop feeding."""


class Guard:
    """Verify access tokens for one issuer and audience; see the module docstring.

    Keys: ``keys`` (fixed), or ``jwks_url``, or neither (the ``jwks_uri`` of the issuer's
    ``/.well-known/openid-configuration``). ``revocation`` is checked on every request;
    ``feed`` (optional) is what keeps it current, started and closed with the guard.
    ``cookie_name``: also accept the token from this cookie when no Authorization header.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Collection[str],
        keys: Key | KeySet | None = None,
        jwks_url: str | None = None,
        jwks: RemoteJWKS | None = None,
        algorithms: Collection[str] | None = None,
        leeway: float = 0,
        typ: str | None = "at+jwt",
        revocation: RevocationSet | None = None,
        feed: Feed | None = None,
        cookie_name: str | None = None,
        realm: str | None = None,
        require: Collection[str] = _REQUIRED_CLAIMS,
        max_age: float | None = None,
        cache_size: int = 4096,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Fix the policy; no network call happens here (see ``start``)."""
        if keys is not None and (jwks_url is not None or jwks is not None):
            raise ValueError("give keys or a JWKS source, not both")
        if jwks is None and keys is None:
            jwks = RemoteJWKS(jwks_url) if jwks_url is not None else RemoteJWKS(issuer=issuer)
        self.issuer = issuer
        self.revocation = revocation
        self.feed = feed
        # Started by start() or, when a service never calls it, by the first request: a feed
        # left unstarted would let revoked tokens through (or, with a staleness bound, refuse
        # every token) with nothing said.
        self._feed_pending = feed is not None
        self._feed_lock = threading.Lock()
        self.cookie_name = cookie_name
        self.realm = realm if realm is not None else issuer
        self._verifier = Verifier(
            keys if keys is not None else KeySet(()),
            algorithms=algorithms,
            issuer=issuer,
            audience=audience,
            typ=typ,
            leeway=leeway,
            max_age=max_age,
            require=require,
            cache_size=cache_size,
            max_token_bytes=max_token_bytes,
            is_revoked=revocation.is_revoked if revocation is not None else None,
            clock=clock,
        )
        self.jwks = jwks
        # Authorization header text -> (token, Claims) for tokens that passed everything once:
        # the next request with that header skips the RFC 6750 parse (a regex over ~600
        # characters) and building Claims, and pays only the Verifier's cache hit (time and
        # revocation checks). Claims are immutable, so one instance serves every request.
        self._by_header: dict[str, tuple[str, Claims]] = {}
        self._by_header_size = max(0, cache_size)
        if jwks is not None:
            jwks.subscribe(self._set_keys)

    def _set_keys(self, keys: KeySet) -> None:
        self._verifier.keys = keys  # empties the Verifier cache: a rotated-out key dies now
        self._by_header.clear()

    def _start_feed(self) -> None:
        with self._feed_lock:
            if self._feed_pending and self.feed is not None:
                self.feed.start()  # a daemon thread: returns at once
                self._feed_pending = False

    def _seen(self, authorization: str | None) -> Claims | None:
        """The Claims of a header verified before, re-checked for time and revocation."""
        if self._feed_pending:
            self._start_feed()
        if authorization is None:
            return None
        hit = self._by_header.get(authorization)
        if hit is None:
            return None
        if self.jwks is not None:
            self.jwks.check()
        try:
            self._verifier.verify(hit[0])  # a cache hit, or a full check if it was evicted
        except KeyNotFound:
            return None  # keys changed under us: take the slow path, which may refetch them
        return hit[1]

    def _remember(self, authorization: str | None, token: str, claims: Claims) -> None:
        if authorization is None or not authorization.endswith(token) or not self._by_header_size:
            return  # the token came from a cookie
        cache = self._by_header
        if len(cache) >= self._by_header_size:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del cache[next(iter(cache))]  # FIFO, as the Verifier's cache
        cache[authorization] = (token, claims)

    @property
    def verifier(self) -> Verifier:
        """The underlying Verifier (its cache and policy)."""
        return self._verifier

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the revocation feed, then load the JWKS now rather than on the first request.

        Raises JWKSUnavailable when the issuer cannot be reached; the guard still works (it
        retries on the first request), so a service may log that and carry on. Without this
        call, the first request starts the feed and fetches the keys.
        """
        self._start_feed()
        if self.jwks is not None:
            self.jwks.refresh()

    def close(self) -> None:
        """Stop the revocation feed and the JWKS client."""
        with self._feed_lock:
            self._feed_pending = False  # a closed guard does not start its feed again
        if self.feed is not None:
            self.feed.close()
        if self.jwks is not None:
            self.jwks.close()

    # -- verification -------------------------------------------------------------------

    def verify(self, token: str | bytes) -> Claims:
        """Verify one access token; return its Claims. Raises only JoseError.

        May block on the network only to fetch keys: the first time, or when a token names
        an unknown kid (at most once per the JWKS cooldown).
        """
        if self._feed_pending:
            self._start_feed()
        jwks = self.jwks
        if jwks is None:
            return Claims.from_mapping(self._verifier.verify(token))
        jwks.check()  # a clock comparison; a due refresh runs in the background
        try:
            return Claims.from_mapping(self._verifier.verify(token))
        except KeyNotFound:
            # A new signing key (rotation) or a forged kid: refetch, rate-limited.
            if not jwks.refresh_for_unknown_kid():
                raise
        return Claims.from_mapping(self._verifier.verify(token))

    async def verify_async(self, token: str | bytes) -> Claims:
        """``verify`` for event loops: a key fetch, if one is needed, runs in a thread."""
        if self._feed_pending:
            self._start_feed()
        jwks = self.jwks
        if jwks is None:
            return Claims.from_mapping(self._verifier.verify(token))
        jwks.check()
        try:
            return Claims.from_mapping(self._verifier.verify(token))
        except KeyNotFound:
            import anyio.to_thread  # only here: the sync guard must not need anyio

            if not await anyio.to_thread.run_sync(jwks.refresh_for_unknown_kid):
                raise
        return Claims.from_mapping(self._verifier.verify(token))

    def authenticate(
        self,
        authorization: str | None,
        cookies: Mapping[str, str] | None = None,
        *,
        scopes: Collection[str] = (),
    ) -> Claims:
        """Find the token (RFC 6750 header, else the cookie), verify it, check ``scopes``."""
        claims = self._seen(authorization)
        if claims is None:
            token = request_token(authorization, cookies, self.cookie_name)
            claims = self.verify(token)
            self._remember(authorization, token, claims)
        if scopes:
            claims.require(scopes)
        return claims

    async def authenticate_async(
        self,
        authorization: str | None,
        cookies: Mapping[str, str] | None = None,
        *,
        scopes: Collection[str] = (),
    ) -> Claims:
        """``authenticate`` for event loops (see ``verify_async``)."""
        claims = self._seen(authorization)
        if claims is None:
            token = request_token(authorization, cookies, self.cookie_name)
            claims = await self.verify_async(token)
            self._remember(authorization, token, claims)
        if scopes:
            claims.require(scopes)
        return claims

    # -- adapters (imported on use: a Flask service needs no Starlette, and the reverse) --

    def require(self, scopes: Collection[str] = ()) -> Callable[..., Awaitable[Claims]]:
        """A FastAPI dependency returning Claims: ``Depends(guard.require(scopes=["read"]))``.

        Call ``jotkit.guard.asgi.install_error_handler(app)`` once for the JSON error body.
        """
        from jotkit.guard.asgi import require

        return require(self, scopes)

    def flask_required(self, scopes: Collection[str] = ()) -> Callable[[_View], _View]:
        """A Flask view decorator; the Claims are on ``flask.g.claims``."""
        from jotkit.guard.wsgi import flask_required

        return flask_required(self, scopes)

    def challenge(self, exc: JoseError) -> Challenge:
        """The HTTP answer to a refusal (status, WWW-Authenticate, JSON body)."""
        return challenge(exc, realm=self.realm)

"""The ``Guard``: one verification policy for a resource server, built on ``jose.Verifier``.

Per request the guard finds the token (RFC 6750 header or a cookie), verifies it through the
Verifier's cache (a token seen before costs two comparisons and the revocation lookups), and
returns its ``Principal``. A token bound to a key (``cnf.jkt``, RFC 9449) is accepted only as
``Authorization: DPoP <token>`` with a ``DPoP`` proof made for this request by that key.
Keys are fixed, or fetched from the issuer (``RemoteJWKS``) in the
background: the steady state never touches the network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import warnings
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from jotkit.codes import (
    ERR_DPOP_HTU,
    ERR_DPOP_MISSING,
    ERR_DPOP_MULTIPLE,
    ERR_DPOP_REPLAYED,
    ERR_POLICY_AUDIENCE,
    ERR_POLICY_ISSUER,
)
from jotkit.guard.bearer import dpop_token, request_token
from jotkit.guard.errors import Challenge, challenge
from jotkit.guard.jwks import RemoteJWKS
from jotkit.guard.nonces import DPoPNonces
from jotkit.guard.principal import Principal
from jotkit.jose.dpop import (
    ERR_DPOP_BOUND_AS_BEARER,
    ERR_DPOP_UNBOUND_TOKEN,
    DPoPError,
    ProofChecker,
    ProofPolicy,
    normalize_htu,
)
from jotkit.jose.errors import InvalidPolicy, JoseError, KeyNotFound
from jotkit.jose.keys import Key
from jotkit.jose.keyset import KeySet
from jotkit.jose.policy import (
    ACCESS_TOKEN_CLAIMS,
    Policy,
    policy_from,
)
from jotkit.jose.verifier import Verifier
from jotkit.revocation.entries import RevocationSet
from jotkit.revocation.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
from jotkit.revocation.transport import Feed

__all__ = ["Guard"]

_View = TypeVar("_View", bound=Callable[..., Any])


class Guard:
    """Verify access tokens for one issuer and audience; see the module docstring.

    The verification policy is ``policy`` (a ``Policy`` with one issuer and an audience;
    ``Policy.for_access_tokens`` gives the defaults below), or the keywords ``issuer``,
    ``audience``, ``algorithms``, ``leeway``, ``typ`` (at+jwt), ``require`` (exp iat sub
    jti, RFC 9068), ``max_age``, ``max_token_bytes`` and ``clock``, which build one: not both.

    Keys: ``keys`` (fixed), or ``jwks_url``, or neither (the ``jwks_uri`` of the issuer's
    ``/.well-known/openid-configuration``). ``revocation`` is checked on every request;
    ``feed`` (optional) is what keeps it current, started and closed with the guard.
    ``cookie_name``: also accept the token from this cookie when no Authorization header.

    DPoP (RFC 9449, docs/dpop.md): ``dpop`` is the proof policy (algorithms, iat window,
    nonce hook), ``dpop_replay`` the jti cache (in memory by default; a ``RedisReplayCache``,
    or its ``redis://`` URL, when several processes serve the API), ``public_url`` the scheme://host[:port][/prefix]
    clients call when a proxy in front changes what the app sees (proofs name that URL).
    ``dpop_nonces`` (optional, §9): proofs must carry one of its nonces; a refusal for a
    missing or stale one is ``use_dpop_nonce`` with a fresh nonce in ``DPoP-Nonce``.
    """

    def __init__(
        self,
        *,
        issuer: str | None = None,
        audience: str | Collection[str] | None = None,
        keys: Key | KeySet | None = None,
        jwks_url: str | None = None,
        jwks: RemoteJWKS | None = None,
        algorithms: Collection[str] | None = None,
        leeway: float | None = None,
        typ: str | None = "at+jwt",
        revocation: RevocationSet | None = None,
        feed: Feed | None = None,
        cookie_name: str | None = None,
        realm: str | None = None,
        require: Collection[str] | None = None,
        max_age: float | None = None,
        cache_size: int = 4096,
        max_token_bytes: int | None = None,
        dpop: ProofPolicy | None = None,
        dpop_replay: ReplayCache | str | None = None,
        public_url: str | None = None,
        dpop_nonces: DPoPNonces | None = None,
        clock: Callable[[], float] | None = None,
        policy: Policy | None = None,
    ) -> None:
        """Fix the policy; no network call happens here (see ``start``)."""
        if keys is not None and (jwks_url is not None or jwks is not None):
            raise ValueError("give keys or a JWKS source, not both")
        if policy is None and (issuer is None or audience is None):
            raise TypeError("Guard needs issuer and audience, or a policy")
        policy = policy_from(
            policy,
            "Guard",
            issuer=issuer,
            audience=audience,
            algorithms=algorithms,
            leeway=leeway,
            # typ's default is a value (None turns the check off): with a policy, only another
            # value counts as given. Both defaults are Policy.for_access_tokens's.
            typ=typ if policy is None or typ != "at+jwt" else None,
            require=require if require is not None or policy is not None else ACCESS_TOKEN_CLAIMS,
            max_age=max_age,
            max_token_bytes=max_token_bytes,
            clock=clock,
        )
        if type(policy.issuer) is not str or policy.audience is None:
            raise InvalidPolicy(
                "a Guard verifies one issuer's tokens for its audience: the policy needs an "
                "issuer (one string) and an audience",
                code=ERR_POLICY_ISSUER if type(policy.issuer) is not str else ERR_POLICY_AUDIENCE,
            )
        issuer = policy.issuer
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
            policy,
            cache_size=cache_size,
            is_revoked=revocation.is_revoked if revocation is not None else None,
        )
        self.jwks = jwks
        self._clock = policy.clock
        if dpop_nonces is not None:
            dpop = dataclasses.replace(dpop or ProofPolicy(), check_nonce=dpop_nonces.accepts)
        self.dpop_nonces = dpop_nonces
        self._proofs = ProofChecker(dpop)
        self.dpop_algs = " ".join(self._proofs.policy.algorithms)
        self._replay_ttl = self._proofs.policy.replay_ttl_seconds
        if isinstance(dpop_replay, str):
            dpop_replay = RedisReplayCache(dpop_replay)
        self.dpop_replay: ReplayCache = (
            dpop_replay if dpop_replay is not None else MemoryReplayCache()
        )
        if public_url is not None:
            try:
                normalize_htu(public_url)  # an unusable public_url fails here, not per request
            except DPoPError:
                raise ValueError("public_url must be an absolute http(s) URL") from None
            public_url = public_url.rstrip("/")
        self.public_url = public_url
        # Authorization header text -> (token, Principal) for tokens that passed everything once:
        # the next request with that header skips the RFC 6750 parse (a regex over ~600
        # characters) and building Principal, and pays only the Verifier's cache hit (time and
        # revocation checks). A Principal is immutable, so one instance serves every request.
        self._by_header: dict[str, tuple[str, Principal]] = {}
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

    def _seen(self, authorization: str | None) -> tuple[str, Principal] | None:
        """The (token, Principal) of a header verified before,
        re-checked for time and revocation."""
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
            self._verifier.check(hit[0])  # a cache hit, or a full check if it was evicted
        except KeyNotFound:
            return None  # keys changed under us: take the slow path, which may refetch them
        return hit

    def _remember(self, authorization: str | None, token: str, claims: Principal) -> None:
        if authorization is None or not authorization.endswith(token) or not self._by_header_size:
            return  # the token came from a cookie
        cache = self._by_header
        if len(cache) >= self._by_header_size:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del cache[next(iter(cache))]  # FIFO, as the Verifier's cache
        cache[authorization] = (token, claims)

    @property
    def policy(self) -> Policy:
        """The verification policy (issuer, audience, typ, required claims...)."""
        return self._verifier.policy

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

    def verify(self, token: str | bytes) -> Principal:
        """Verify one access token; return its Principal. Raises only JoseError.

        May block on the network only to fetch keys: the first time, or when a token names
        an unknown kid (at most once per the JWKS cooldown).
        """
        if self._feed_pending:
            self._start_feed()
        jwks = self.jwks
        if jwks is None:
            return Principal.from_mapping(self._verifier.verify(token))
        jwks.check()  # a clock comparison; a due refresh runs in the background
        try:
            return Principal.from_mapping(self._verifier.verify(token))
        except KeyNotFound:
            # A new signing key (rotation) or a forged kid: refetch, rate-limited.
            if not jwks.refresh_for_unknown_kid():
                raise
        return Principal.from_mapping(self._verifier.verify(token))

    async def verify_async(self, token: str | bytes) -> Principal:
        """``verify`` for event loops: a key fetch, if one is needed, runs in a thread."""
        if self._feed_pending:
            self._start_feed()
        jwks = self.jwks
        if jwks is None:
            return Principal.from_mapping(self._verifier.verify(token))
        jwks.check()
        try:
            return Principal.from_mapping(self._verifier.verify(token))
        except KeyNotFound:
            import anyio.to_thread  # only here: the sync guard must not need anyio

            if not await anyio.to_thread.run_sync(jwks.refresh_for_unknown_kid):
                raise
        return Principal.from_mapping(self._verifier.verify(token))

    def authenticate(
        self,
        authorization: str | None,
        cookies: Mapping[str, str] | None = None,
        *,
        scopes: Collection[str] = (),
        dpop: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> Principal:
        """Find the token (RFC 6750 header, else the cookie), verify it, check ``scopes``.

        ``dpop`` is the request's DPoP header (several joined by commas), ``method`` and
        ``url`` the request's (scheme://host/path as the server saw it): needed to accept a
        DPoP-bound token.
        """
        hit = self._seen(authorization)
        if hit is None:
            token, is_dpop = self._find_token(authorization, cookies)
            claims = self.verify(token)
            self._confirm(token, claims, is_dpop, dpop, method, url)
            self._remember(authorization, token, claims)
        else:
            token, claims = hit
            self._confirm(token, claims, claims.jkt is not None, dpop, method, url)
        if scopes:
            claims.require_scopes(scopes)
        return claims

    async def authenticate_async(
        self,
        authorization: str | None,
        cookies: Mapping[str, str] | None = None,
        *,
        scopes: Collection[str] = (),
        dpop: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> Principal:
        """``authenticate`` for event loops (see ``verify_async``)."""
        hit = self._seen(authorization)
        if hit is None:
            token, is_dpop = self._find_token(authorization, cookies)
            claims = await self.verify_async(token)
            await self._confirm_async(token, claims, is_dpop, dpop, method, url)
            self._remember(authorization, token, claims)
        else:
            token, claims = hit
            await self._confirm_async(token, claims, claims.jkt is not None, dpop, method, url)
        if scopes:
            claims.require_scopes(scopes)
        return claims

    def _find_token(
        self, authorization: str | None, cookies: Mapping[str, str] | None
    ) -> tuple[str, bool]:
        """(token, whether it came with the DPoP scheme)."""
        if authorization:
            token = dpop_token(authorization)
            if token is not None:
                return token, True
        return request_token(authorization, cookies, self.cookie_name), False

    async def _confirm_async(
        self,
        token: str,
        claims: Principal,
        is_dpop: bool,
        proof: str | None,
        method: str | None,
        url: str | None,
    ) -> None:
        """``_confirm`` for event loops: with a networked replay cache (Redis: a round trip,
        up to its socket timeout when Redis is down), the check runs in a worker thread."""
        if not is_dpop or isinstance(self.dpop_replay, MemoryReplayCache):
            self._confirm(token, claims, is_dpop, proof, method, url)
            return
        import anyio.to_thread  # only here: the sync guard must not need anyio

        await anyio.to_thread.run_sync(self._confirm, token, claims, is_dpop, proof, method, url)

    def _confirm(
        self,
        token: str,
        claims: Principal,
        is_dpop: bool,
        proof: str | None,
        method: str | None,
        url: str | None,
    ) -> None:
        """RFC 9449 §7: a bound token needs the DPoP scheme and a fresh proof by its key."""
        if not is_dpop:
            if claims.jkt is not None:
                # §7.2: a stolen bound token replayed as a bearer token must not work.
                raise DPoPError(
                    "this token is bound to a key (cnf.jkt): send it as 'DPoP <token>' with a "
                    "DPoP proof",
                    code=ERR_DPOP_BOUND_AS_BEARER,
                )
            return
        if claims.jkt is None:
            raise DPoPError(
                "the DPoP scheme needs a DPoP-bound token (cnf.jkt)", code=ERR_DPOP_UNBOUND_TOKEN
            )
        if not proof:
            raise DPoPError("the request has no DPoP header", code=ERR_DPOP_MISSING)
        if "," in proof:
            raise DPoPError("the request has more than one DPoP header", code=ERR_DPOP_MULTIPLE)
        if method is None or url is None:
            raise DPoPError(
                "the guard was not given the request's method and URL", code=ERR_DPOP_HTU
            )
        if self.public_url is not None:
            url = self.public_url + (urlsplit(url).path or "/")
        checked = self._proofs.check_request(proof, method, url, self._clock(), token, claims.jkt)
        # Keyed by the key too: one client's jti cannot block another's.
        if not self.dpop_replay.first_use(f"{checked.jkt}:{checked.jti}", self._replay_ttl):
            raise DPoPError(
                "this DPoP proof was already used (jti replayed)", code=ERR_DPOP_REPLAYED
            )

    # -- adapters (imported on use: a Flask service needs no Starlette, and the reverse) --

    def fastapi_dependency(
        self, scopes: Collection[str] = ()
    ) -> Callable[..., Awaitable[Principal]]:
        """A FastAPI dependency returning the Principal:
        ``Depends(guard.fastapi_dependency(scopes=["read"]))``.

        Call ``jotkit.guard.asgi.install_error_handler(app)`` once for the JSON error body.
        """
        from jotkit.guard.asgi import fastapi_dependency

        return fastapi_dependency(self, scopes)

    def require(self, scopes: Collection[str] = ()) -> Callable[..., Awaitable[Principal]]:
        """Deprecated since 0.1.0, removed in 0.3.0: ``fastapi_dependency`` (``require``
        also named the required claims)."""
        warnings.warn(
            "Guard.require is deprecated: use Guard.fastapi_dependency",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.fastapi_dependency(scopes)

    def flask_required(self, scopes: Collection[str] = ()) -> Callable[[_View], _View]:
        """A Flask view decorator; the Principal is on ``flask.g.claims``."""
        from jotkit.guard.wsgi import flask_required

        return flask_required(self, scopes)

    def challenge(self, exc: JoseError) -> Challenge:
        """The HTTP answer to a refusal (status, WWW-Authenticate, JSON body)."""
        nonce = None
        if self.dpop_nonces is not None and isinstance(exc, DPoPError):
            nonce = self.dpop_nonces.fresh()
        return challenge(exc, realm=self.realm, dpop_algs=self.dpop_algs, dpop_nonce=nonce)

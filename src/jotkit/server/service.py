"""What the auth server does, apart from HTTP: login, refresh rotation, logout, revocation.

Routes (server/routes.py, oauth.py, operations.py) translate requests into these calls and
``ApiError`` into answers.
Every change reaches the store first (durable, in one transaction), then the feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jotkit.accounts import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARACTERS
from jotkit.codes import ERR_DPOP_JKT_MISMATCH, ERR_DPOP_MISSING
from jotkit.guard import Guard, Principal
from jotkit.guard.nonces import DPoPNonces
from jotkit.jose import JoseError, Key, jwt
from jotkit.jose.dpop import DPoPError
from jotkit.revocation import Revocation, SetFull
from jotkit.revocation.replay import ReplayCache, ReplayCacheUnavailable
from jotkit.server.dpop import StoreReplayCache, TokenEndpointProofs, proof_policy, refusal
from jotkit.server.errors import ApiError
from jotkit.server.feed import ServerFeed
from jotkit.server.keyring import Keyring
from jotkit.server.metrics import Metrics
from jotkit.server.passwords import Passwords
from jotkit.server.settings import Settings
from jotkit.server.successors import open_successor, seal_successor
from jotkit.server.throttling import LoginCounters, StoreCounters
from jotkit.store import Conflict, Family, Presented, Rotation, Store, User

__all__ = ["ACCESS_COOKIE", "AuthService", "TokenPair", "hash_refresh_token"]

ACCESS_COOKIE = "jotkit_access"

audit = logging.getLogger("jotkit.audit")

_REFRESH_FAILURES = {
    "unknown": "refresh token not recognised",
    "expired": "refresh token expired: log in again",
    "revoked": "session revoked: log in again",
    "disabled": "account disabled",
    "unbound": "this session is not bound to a DPoP key and this server requires DPoP: log in "
    "again with a DPoP proof",
}


def hash_refresh_token(token: str) -> str:
    """The only form in which a refresh token is stored (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _audit(event: str, **fields: Any) -> None:
    audit.info(event, extra={"audit": {"event": event, **fields}})


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access JWT and the refresh token of its session."""

    access_token: str
    expires_in: int
    refresh_token: str
    sid: str
    token_type: str = "Bearer"  # "DPoP" when the access token is bound (RFC 9449 §5)

    def to_json(self) -> dict[str, Any]:
        """The OAuth 2.0 token response shape (RFC 6749 §5.1)."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A refresh under way: what was presented, and what is ready for its answer."""

    refresh_token: str
    dpop: Sequence[str]
    presented: Presented
    key: Key
    successor: str
    proofless_required: bool


class AuthService:
    """The auth server's operations over one store, keyring and feed."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        keyring: Keyring,
        feed: ServerFeed,
        metrics: Metrics,
        passwords: Passwords,
        *,
        login_counters: LoginCounters | None = None,
        dpop_replay: ReplayCache | None = None,
        dpop_nonces: DPoPNonces | None = None,
    ) -> None:
        """Wire the parts; ``guard`` checks this server's own access tokens, as any resource
        server's guard would (same policy, same revocation set), minus the remote JWKS.
        Failed logins are counted in the store unless ``login_counters`` says otherwise;
        DPoP proofs are remembered in the store unless ``dpop_replay`` says otherwise
        (server/dpop.py), and token-endpoint proofs need ``dpop_nonces``' nonces if given."""
        self.settings = settings
        self.login_counters = login_counters or StoreCounters(
            store, window_seconds=settings.login_window_seconds
        )
        self.store = store
        self.keyring = keyring
        self.feed = feed
        self.metrics = metrics
        self.passwords = passwords
        replay = dpop_replay if dpop_replay is not None else StoreReplayCache(store)
        self.proofs = TokenEndpointProofs(settings, replay, dpop_nonces)
        self.guard = Guard(
            issuer=settings.issuer,
            audience=settings.audiences,
            keys=keyring.verification_keys,
            typ="at+jwt",
            revocation=feed.revocations,
            cookie_name=ACCESS_COOKIE if settings.cookie_mode else None,
            realm="jotkit",
            require=("exp", "iat", "sub", "jti", "sid"),
            dpop=proof_policy(settings),
            dpop_replay=replay,
        )
        self.verifier = self.guard.verifier

    def refresh_keys(self) -> None:
        """Re-read the keyring and hand new keys to the verifier (only when they changed)."""
        before = self.keyring.jwks_json
        self.keyring.reload()
        if self.keyring.jwks_json != before:
            self.verifier.keys = self.keyring.verification_keys

    def _theft(self, rotation: Rotation, event: str, address: str) -> None:
        """Count and audit a refresh that revoked its session as stolen."""
        self.metrics.inc("jotkit_refresh_reuse_detected_total")
        _audit(
            event,
            user=rotation.user and rotation.user.id,
            sid=rotation.family and rotation.family.id,
            address=address,
        )

    def _forget_after(self, now: float) -> float:
        return now + self.settings.access_ttl_seconds + self.settings.clock_skew_seconds

    # -- users ----------------------------------------------------------------------------

    def add_user(self, email: str, password: str, *, scope: str = "") -> User:
        """Create a user (argon2id hash); ApiError conflict if the email is taken."""
        _check_password(password)
        try:
            user = self.store.add_user(
                email, self.passwords.hash(password), now=time.time(), scope=scope
            )
        except Conflict:
            raise ApiError("conflict", "a user with that email already exists") from None
        _audit("user_created", user=user.id)
        return user

    # -- tokens ---------------------------------------------------------------------------

    def _proof_key(self, proofs: Sequence[str], path: str) -> str | None:
        """The thumbprint of the key of the request's DPoP proof, or None; ApiError if refused."""
        try:
            return self.proofs.key_thumbprint(proofs, path)
        except (DPoPError, ReplayCacheUnavailable) as exc:
            self.metrics.inc("jotkit_dpop_refusals_total")
            raise refusal(exc, self.proofs) from None

    def _access_token(
        self, user: User, sid: str, now: float, key: Key, jkt: str | None = None
    ) -> str:
        settings = self.settings
        iat = int(now)
        claims: dict[str, Any] = {
            "iss": settings.issuer,
            "sub": user.id,
            "aud": settings.audiences[0]
            if len(settings.audiences) == 1
            else list(settings.audiences),
            "exp": iat + settings.access_ttl_seconds,
            "iat": iat,
            "jti": uuid.uuid4().hex,
            "sid": sid,
            "client_id": "jotkit",
            "scope": user.scope,
        }
        if settings.include_email_claim:
            claims["email"] = user.email
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}  # RFC 9449 §6.1: bound to the client's DPoP key
        return jwt.sign(claims, key, header={"typ": "at+jwt"})

    def login(
        self,
        email: str,
        password: str,
        *,
        address: str,
        user_agent: str,
        dpop: Sequence[str] = (),
    ) -> TokenPair:
        """Check the password (throttled), start a session, issue its first token pair.

        ``dpop``: the request's DPoP headers. A valid proof binds the session and its access
        tokens to the proof's key; it is checked first, before any password work.
        """
        settings = self.settings
        jkt = self._proof_key(dpop, "/login")
        now = time.time()
        account, by_address = f"account:{email.lower()}", f"address:{address}"
        counted = self.login_counters.status((account, by_address), now=now)
        limits = {
            account: settings.login_max_failures_per_account,
            by_address: settings.login_max_failures_per_address,
        }
        # The window ends of the keys at their limit: a login waits for the last of them.
        throttled = [ends for key, (n, ends) in counted.items() if n >= limits[key]]
        if throttled:
            self.metrics.inc("jotkit_login_throttled_total")
            retry = max(1, int(max(throttled) - now) + 1)
            _audit("login_throttled", address=address)
            raise ApiError(
                "too_many_attempts",
                f"too many failed logins: try again in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        user = (
            self.store.user_by_email(email)
            if len(password.encode()) <= MAX_PASSWORD_BYTES
            else None
        )
        matched = self.passwords.check(
            user.password_hash if user else None, password[:MAX_PASSWORD_BYTES]
        )
        if user is None or not matched or user.disabled:
            self.login_counters.record_failure((account, by_address), now=now)
            self.metrics.inc("jotkit_login_failures_total")
            _audit("login_failed", user=user.id if user else None, address=address)
            raise ApiError("invalid_credentials", "wrong email or password")
        if account in counted:
            self.login_counters.clear(account, now=now)
        if self.passwords.needs_rehash(user.password_hash):
            self.store.update_user(user.email, password_hash=self.passwords.hash(password))
        key = self.keyring.signing_key(now=now)  # before the session exists: no orphan on error
        refresh_token = secrets.token_urlsafe(32)  # 256 bits from the OS CSPRNG
        family = self.store.create_family(
            user,
            token_hash=hash_refresh_token(refresh_token),
            now=now,
            idle_ttl=settings.refresh_idle_ttl_seconds,
            absolute_ttl=settings.refresh_absolute_ttl_seconds,
            user_agent=user_agent,
            client_address=address,
            dpop_jkt=jkt,
        )
        self.metrics.inc("jotkit_logins_total")
        _audit("login", user=user.id, sid=family.id, address=address, dpop=jkt is not None)
        return TokenPair(
            self._access_token(user, family.id, now, key, jkt),
            settings.access_ttl_seconds,
            refresh_token,
            family.id,
            "Bearer" if jkt is None else "DPoP",
        )

    def refresh(self, refresh_token: str, *, address: str, dpop: Sequence[str] = ()) -> TokenPair:
        """Rotate: spend ``refresh_token``, issue a new pair; a replay revokes its family.

        Within ``reuse_grace_seconds`` the previous token gets the current one instead
        (docs/lifecycle.md, "The reuse window"). ``dpop``: the request's DPoP headers; a
        session bound to a key needs a proof by that key, and one presented with another key
        or none is revoked like a replay (RFC 9449 §5, docs/dpop.md). A session that was
        not bound at login stays a bearer session (or is refused when DPoP is required).
        """
        attempt = self._attempt(refresh_token, dpop)
        return self._rotated(attempt, self.store.rotate(attempt.presented), address)

    async def refresh_on_loop(self, refresh_token: str, *, address: str) -> TokenPair:
        """``refresh`` for a request without DPoP headers, its common case awaited on the
        event loop (``Store.rotate_on_loop``, PostgreSQL); any other outcome is judged in a
        worker thread, as ``refresh`` does."""
        attempt = self._attempt(refresh_token, ())
        rotation = await self.store.rotate_on_loop(attempt.presented)
        if rotation is None:
            return await asyncio.to_thread(self._judged, attempt, address)
        return self._rotated(attempt, rotation, address)

    def _attempt(self, refresh_token: str, dpop: Sequence[str]) -> _Attempt:
        # Required mode without a proof: still judged against the session first, so that a
        # bound session's token presented without its key is revoked as in optional mode.
        proofless_required = not dpop and self.proofs.required
        jkt = None if proofless_required else self._proof_key(dpop, "/token/refresh")
        now = time.time()
        key = self.keyring.signing_key(now=now)  # before the spend: an error must not cost it
        successor = secrets.token_urlsafe(32)
        presented = Presented(
            hash_refresh_token(refresh_token),
            hash_refresh_token(successor),
            sealed_successor=seal_successor(refresh_token, successor),
            now=now,
            idle_ttl=self.settings.refresh_idle_ttl_seconds,
            grace=self.settings.reuse_grace_seconds,
            forget_after=self._forget_after(now),
            dpop_jkt=jkt,
            bearer_allowed=not self.proofs.required,
        )
        return _Attempt(refresh_token, dpop, presented, key, successor, proofless_required)

    def _judged(self, attempt: _Attempt, address: str) -> TokenPair:
        return self._rotated(attempt, self.store.judge(attempt.presented), address)

    def _rotated(self, attempt: _Attempt, rotation: Rotation, address: str) -> TokenPair:
        """The answer to a refresh whose token the store judged ``rotation``."""
        if rotation.revocation is not None:
            self._published([rotation.revocation])
        if rotation.outcome == "reused":
            self._theft(rotation, "refresh_reuse_detected", address)
            raise ApiError(
                "invalid_grant",
                "refresh token already used: the session is revoked (possible token theft)",
            )
        if rotation.outcome == "key_mismatch":
            # The same theft signal as a reuse: the refresh token left the client that holds
            # the session's key.
            self._theft(rotation, "refresh_dpop_key_mismatch", address)
            raise ApiError(
                "invalid_dpop_proof",
                "this session is bound to another DPoP key (or needs a DPoP proof): the "
                "session is revoked (possible token theft)",
                headers=self.proofs.fresh_nonce_header(),
                detail=ERR_DPOP_MISSING
                if attempt.presented.dpop_jkt is None
                else ERR_DPOP_JKT_MISMATCH,
            )
        if attempt.proofless_required:  # nothing was spent: a bound session is key_mismatch above
            self._proof_key(attempt.dpop, "/token/refresh")  # raises the missing-proof refusal
        accepted, successor = rotation.outcome == "ok", attempt.successor
        if rotation.outcome == "previous":
            # The current token, sealed under a key only the presented token yields; a row
            # that does not open (altered) is refused like an unknown token.
            current = open_successor(attempt.refresh_token, rotation.sealed_successor or b"")
            accepted, successor = current is not None, current or ""
        if not accepted or rotation.family is None or rotation.user is None:
            self.metrics.inc("jotkit_refresh_failures_total")
            reason = _REFRESH_FAILURES.get(rotation.outcome, _REFRESH_FAILURES["unknown"])
            raise ApiError("invalid_grant", reason)
        if rotation.outcome == "previous":
            self.metrics.inc("jotkit_refresh_previous_total")
            _audit("refresh_previous", user=rotation.user.id, sid=rotation.family.id)
        else:
            self.metrics.inc("jotkit_refreshes_total")
            _audit("refresh", user=rotation.user.id, sid=rotation.family.id)
        bound = rotation.family.dpop_jkt
        return TokenPair(
            self._access_token(
                rotation.user, rotation.family.id, attempt.presented.now, attempt.key, bound
            ),
            self.settings.access_ttl_seconds,
            successor,
            rotation.family.id,
            "Bearer" if bound is None else "DPoP",
        )

    def _published(self, entries: list[Revocation]) -> None:
        if entries:
            self.metrics.inc("jotkit_revocations_total", len(entries))
            self.feed.publish(entries, now=time.time())

    # -- sessions and revocation ----------------------------------------------------------

    def logout(self, claims: Mapping[str, Any]) -> None:
        """Revoke the session of the presented access token."""
        self.revoke_session(claims["sub"], claims["sid"], reason="logout")

    def logout_all(self, claims: Mapping[str, Any]) -> int:
        """Sign out everywhere: every session of the user and a not-before watermark."""
        now = time.time()
        entries = self.store.revoke_user(
            claims["sub"], reason="logout_all", now=now, forget_after=self._forget_after(now)
        )
        self._published(entries)
        _audit("logout_all", user=claims["sub"], sessions=len(entries) - 1)
        return len(entries) - 1

    def sessions(self, user_id: str) -> list[Family]:
        """The user's live sessions."""
        return self.store.sessions(user_id, now=time.time())

    def revoke_session(self, user_id: str, sid: str, *, reason: str) -> None:
        """Revoke one of the user's sessions; not_found if it is not theirs or not live."""
        family = self.store.family(sid)
        if family is None or family.user_id != user_id:
            raise ApiError("not_found", "no such session")
        now = time.time()
        entry = self.store.revoke_family(
            sid, reason=reason, now=now, forget_after=self._forget_after(now)
        )
        if entry is not None:
            self._published([entry])
        _audit(reason, user=user_id, sid=sid)

    def authenticate(
        self, authorization: str | None, cookies: Mapping[str, str] | None
    ) -> Principal:
        """The guard's verdict on a request's access token (signature, claims, revocation)."""
        started = time.perf_counter()
        try:
            return self.guard.authenticate(authorization, cookies)
        except JoseError:
            self.metrics.inc("jotkit_verify_failures_total")
            raise
        finally:
            self.metrics.observe_verify(time.perf_counter() - started)

    async def authenticate_dpop(
        self, authorization: str, dpop: str | None, *, method: str, url: str
    ) -> Principal:
        """``authenticate`` for ``Authorization: DPoP``: the token, and the request's proof
        (``dpop``, several headers joined by commas) by its key (RFC 9449 §7). The replay
        cache write runs in a worker thread (guard.authenticate_async)."""
        started = time.perf_counter()
        try:
            return await self.guard.authenticate_async(
                authorization, None, dpop=dpop, method=method, url=url
            )
        except JoseError:
            self.metrics.inc("jotkit_verify_failures_total")
            raise
        finally:
            self.metrics.observe_verify(time.perf_counter() - started)

    def _locate(
        self, token: str, hint: str | None
    ) -> tuple[Mapping[str, Any] | None, tuple[Family, User, float, float | None] | None]:
        """(verified access-token claims, None), (None, the stored refresh token) or (None,
        None). The hinted type is tried first and never alone (RFC 7009 §2.1, RFC 7662 §2.1)."""
        order = ["access_token", "refresh_token"]
        if hint == "refresh_token":
            order.reverse()
        for kind in order:
            if kind == "access_token" and token.count(".") == 2:
                try:
                    return self.verifier.verify(token), None
                except SetFull as exc:
                    # Not "no such token": a revoke answered 200 would write nothing, and the
                    # token would stay valid wherever the set has room.
                    raise ApiError("unavailable", str(exc), headers={"Retry-After": "5"}) from None
                except JoseError:
                    continue
            if kind == "refresh_token":
                found = self.store.find_refresh_token(hash_refresh_token(token))
                if found is not None:
                    return None, found
        return None, None

    def revoke_token(self, token: str, hint: str | None) -> None:
        """RFC 7009: revoke an access token (its jti) or a refresh token (its family).

        Unknown, invalid or already-dead tokens are not an error (RFC 7009 §2.2).
        """
        claims, found = self._locate(token, hint)
        if claims is not None:
            entry = self.store.add_revocation(
                Revocation("jti", claims["jti"], claims["exp"] + self.settings.clock_skew_seconds),
                now=time.time(),
            )
            self._published([entry])
            _audit("revoke", user=claims["sub"], kind="access_token")
        elif found is not None:
            family, user, _, _ = found
            if family.revoked_at is None:
                self.revoke_session(user.id, family.id, reason="revoke")

    def introspect(self, token: str, hint: str | None) -> dict[str, Any]:
        """RFC 7662: the state and metadata of an access or refresh token (the hint only
        orders the search)."""
        claims, found = self._locate(token, hint)
        if claims is not None:
            # RFC 9449 §6.2: a bound token is introspected as token_type DPoP, with its cnf.
            kind = "DPoP" if "cnf" in claims else "access_token"
            return {"active": True, **claims, "token_type": kind}
        if found is not None:
            return self._refresh_token_state(*found)
        return {"active": False}

    def _refresh_token_state(
        self, family: Family, user: User, expires_at: float, spent_at: float | None
    ) -> dict[str, Any]:
        """The RFC 7662 answer for a stored refresh token."""
        now = time.time()
        if spent_at is not None or family.revoked_at is not None or user.disabled:
            return {"active": False}
        if min(expires_at, family.expires_at) <= now:
            return {"active": False}
        bound = {"cnf": {"jkt": family.dpop_jkt}} if family.dpop_jkt is not None else {}
        return {
            **bound,
            "active": True,
            "token_type": "refresh_token",
            "sub": user.id,
            "sid": family.id,
            "scope": user.scope,
            "client_id": "jotkit",
            "iss": self.settings.issuer,
            "iat": int(family.created_at),
            "exp": int(min(expires_at, family.expires_at)),
        }


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARACTERS:
        raise ApiError(
            "validation_failed", f"password must be at least {MIN_PASSWORD_CHARACTERS} characters"
        )
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ApiError("validation_failed", f"password must be at most {MAX_PASSWORD_BYTES} bytes")

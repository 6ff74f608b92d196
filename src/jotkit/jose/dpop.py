"""DPoP proofs (RFC 9449): make them, and check them per §4.3, pure and synchronous.

A proof is a JWS signed by the client's own key, which it carries in its ``jwk`` header; it
binds one HTTP request (``htm``, ``htu``), a moment (``iat``), a unique ``jti`` and, at a
resource server, the access token (``ath``). ``check_proof`` runs every §4.3 check that
needs no state; the ``jti`` replay check needs a cache shared by the verifiers, which the
caller owns (``jotkit.revocation.replay``), and the server-nonce check is a hook. Both the
guard and the auth server use this module, so it knows no HTTP framework and reads no clock.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from jotkit.codes import (
    CATALOGUE,
    ERR_DPOP_ALG,
    ERR_DPOP_ATH,
    ERR_DPOP_BOUND_TOKEN_AS_BEARER,
    ERR_DPOP_HTM,
    ERR_DPOP_HTU,
    ERR_DPOP_IAT_IN_FUTURE,
    ERR_DPOP_IAT_TOO_OLD,
    ERR_DPOP_JKT_MISMATCH,
    ERR_DPOP_JTI,
    ERR_DPOP_JWK,
    ERR_DPOP_JWK_PRIVATE,
    ERR_DPOP_MALFORMED,
    ERR_DPOP_NONCE,
    ERR_DPOP_SIGNATURE,
    ERR_DPOP_TOKEN_NOT_BOUND,
    ERR_DPOP_TYP,
    ERR_JWS_SIGNATURE_INVALID,
)

# Re-exported: callers imported these from here before jotkit.codes.
from jotkit.codes import ERR_DPOP_MISSING as ERR_DPOP_MISSING
from jotkit.codes import ERR_DPOP_MULTIPLE as ERR_DPOP_MULTIPLE
from jotkit.codes import ERR_DPOP_REPLAYED as ERR_DPOP_REPLAYED
from jotkit.jose import jws
from jotkit.jose.algorithms import ALGORITHMS, Algorithm
from jotkit.jose.b64 import b64encode
from jotkit.jose.errors import JoseError
from jotkit.jose.keys import Key

__all__ = [
    "DEFAULT_DPOP_ALGORITHMS",
    "DPOP_ERRORS",
    "DPOP_TYP",
    "DPoPError",
    "Proof",
    "ProofChecker",
    "ProofPolicy",
    "access_token_hash",
    "check_proof",
    "make_proof",
    "normalize_htu",
]

DPOP_TYP = "dpop+jwt"
# RFC 9449 §4.2: an asymmetric algorithm; never none, never a MAC (a shared secret proves
# nothing about who holds it).
DEFAULT_DPOP_ALGORITHMS = ("ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "RS256")
# Members that only a private (or symmetric) JWK has: a proof carrying one has leaked its key.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_PROOF_BYTES = 4096
_HEADER_CACHE_SIZE = 1024

# Shorter names this module and the guard have used (jotkit.codes has the full ones).
ERR_DPOP_IAT_OLD = ERR_DPOP_IAT_TOO_OLD
ERR_DPOP_IAT_FUTURE = ERR_DPOP_IAT_IN_FUTURE
ERR_DPOP_JKT = ERR_DPOP_JKT_MISMATCH
ERR_DPOP_BOUND_AS_BEARER = ERR_DPOP_BOUND_TOKEN_AS_BEARER
ERR_DPOP_UNBOUND_TOKEN = ERR_DPOP_TOKEN_NOT_BOUND

# The RFC 9449 error value of each proof code, from the catalogue: invalid_dpop_proof, except a
# missing or stale server nonce (use_dpop_nonce, §8/§9).
DPOP_ERRORS: Mapping[str, str] = {
    code: entry.error
    for code, entry in CATALOGUE.items()
    if entry.error == "invalid_dpop_proof" or entry.error == "use_dpop_nonce"
}


class DPoPError(JoseError):
    """A DPoP proof (or its pairing with the token) fails a rule of RFC 9449; see ``code``.

    ``error`` is the RFC's value for the challenge: ``invalid_dpop_proof`` or
    ``use_dpop_nonce``. A bound token sent as Bearer is an ``invalid_token`` (§7.2).
    """

    code = ERR_DPOP_MALFORMED

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)
        self.error = DPOP_ERRORS.get(code, "invalid_token")


@dataclass(frozen=True, slots=True)
class ProofPolicy:
    """What a verifier accepts: ``algorithms``; ``iat`` at most ``iat_window_seconds`` old
    and at most ``iat_leeway_seconds`` ahead of our clock (§11.1); ``check_nonce`` (optional)
    returns whether a proof's ``nonce`` (None when absent) is acceptable (§8, §9).
    ``replay_ttl_seconds`` is how long a ``jti`` must be remembered to refuse every replay.
    """

    algorithms: tuple[str, ...] = DEFAULT_DPOP_ALGORITHMS
    iat_window_seconds: float = 60.0
    iat_leeway_seconds: float = 5.0
    max_proof_bytes: int = _MAX_PROOF_BYTES
    check_nonce: Callable[[str | None], bool] | None = None

    def __post_init__(self) -> None:
        for name in self.algorithms:
            if name not in ALGORITHMS or ALGORITHMS[name].kty == "oct":
                raise ValueError(f"{name!r} is not an asymmetric JWS algorithm (RFC 9449 §4.2)")
        if self.iat_window_seconds <= 0 or self.iat_leeway_seconds < 0:
            raise ValueError("the iat window must be positive and the leeway not negative")

    @property
    def replay_ttl_seconds(self) -> float:
        """A proof is acceptable while iat >= now - window, and iat <= issue time + leeway."""
        return self.iat_window_seconds + self.iat_leeway_seconds


class Proof(NamedTuple):
    """A proof that passed ``check_proof``: its ``jti`` (for the replay cache), ``iat``,
    the RFC 7638 thumbprint ``jkt`` of its key, and its ``nonce`` if any.

    A NamedTuple rather than a frozen dataclass: one is built per request, and a frozen
    dataclass's __init__ (object.__setattr__ per field) costs ~0.6 µs more."""

    jti: str
    iat: float
    jkt: str
    nonce: str | None


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII(access token))), RFC 9449 §4.2."""
    return b64encode(hashlib.sha256(access_token.encode("ascii")).digest())


def normalize_htu(url: str) -> str:
    """The URI a proof's ``htu`` is compared by (RFC 9449 §4.3 step 9, RFC 3986 §6):
    scheme and host lower-cased, the scheme's default port dropped, an empty path as ``/``,
    query and fragment removed. Raises DPoPError for something that is not an http(s) URL."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise DPoPError("htu is not a valid URL", code=ERR_DPOP_HTU) from None
    if scheme not in _DEFAULT_PORTS or not host:
        raise DPoPError("htu must be an absolute http(s) URL", code=ERR_DPOP_HTU)
    if ":" in host:
        host = f"[{host}]"  # IPv6: hostname dropped the brackets
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{authority}{parts.path or '/'}"


def make_proof(
    key: Key,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    alg: str | None = None,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """A DPoP proof for one request (RFC 9449 §4.2), signed with the private ``key``.

    ``htu`` is ``url`` without query and fragment; ``ath`` is set when an access token is
    given (a resource-server request). The header carries the public key, never the kid.
    """
    if not key.is_private or key.kty == "oct":
        raise DPoPError("a DPoP proof is signed with an asymmetric private key", code=ERR_DPOP_ALG)
    parts = urlsplit(url)
    claims: dict[str, Any] = {
        "jti": jti if jti is not None else uuid.uuid4().hex,
        "htm": method,
        "htu": parts._replace(query="", fragment="").geturl(),
        "iat": int(time.time() if now is None else now),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    public = {k: v for k, v in key.public().to_jwk().items() if k not in ("kid", "alg", "use")}
    header = {"typ": DPOP_TYP, "jwk": public, "kid": None}
    return jws.sign(orjson.dumps(claims), key, alg=alg, header=header)


def _embedded_key(header: Mapping[str, Any], policy: ProofPolicy) -> tuple[Key, str]:
    """The proof's own public key and its thumbprint, after the header rules of §4.3."""
    if header.get("typ") != DPOP_TYP:
        raise DPoPError(f'the typ header must be "{DPOP_TYP}"', code=ERR_DPOP_TYP)
    alg = header.get("alg")
    if alg not in policy.algorithms:
        raise DPoPError(
            f"alg {alg!r} is not allowed for DPoP (allowed: {' '.join(policy.algorithms)})",
            code=ERR_DPOP_ALG,
        )
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise DPoPError("the jwk header must be a JSON object", code=ERR_DPOP_JWK)
    if jwk.get("kty") == "oct" or any(name in jwk for name in _PRIVATE_MEMBERS):
        raise DPoPError("the jwk header must hold a public key only", code=ERR_DPOP_JWK_PRIVATE)
    try:
        key = Key.from_jwk({k: v for k, v in jwk.items() if k not in ("alg", "use", "key_ops")})
    except JoseError as exc:
        raise DPoPError(f"the jwk header is not a usable key: {exc}", code=ERR_DPOP_JWK) from None
    return key, key.thumbprint()


def _memo(cache: dict[str, str], text: str, compute: Callable[[str], str]) -> str:
    value = cache.get(text)
    if value is None:
        value = compute(text)
        if len(cache) >= _HEADER_CACHE_SIZE:
            cache.clear()
        cache[text] = value
    return value


class ProofChecker:
    """``check_proof`` with bounded per-checker caches, because a client repeats itself:
    embedded keys by header text (parsing a header and building its key, ~30 µs for EC; only
    headers whose signature verified are kept), normalised URLs (urlsplit, for the proof's
    htu and the request URL) and ``ath`` by access token."""

    def __init__(self, policy: ProofPolicy | None = None) -> None:
        """Check under ``policy`` (the defaults of ProofPolicy when None)."""
        self.policy = policy if policy is not None else ProofPolicy()
        # Header segment -> (embedded key, its thumbprint, the header's algorithm).
        self._headers: dict[bytes, tuple[Key, str, Algorithm]] = {}
        self._urls: dict[str, str] = {}
        self._hashes: dict[str, str] = {}

    def check(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        now: float,
        access_token: str | None = None,
        jkt: str | None = None,
    ) -> Proof:
        """Check one proof against the request (§4.3 steps 1-11 but the jti cache, §7.1).

        ``access_token``: require ``ath`` to be its hash. ``jkt``: require the proof's key to
        have this thumbprint (the token's ``cnf.jkt``). Raises DPoPError.
        """
        return self.check_request(proof, method, url, now, access_token, jkt)

    def check_request(
        self,
        proof: str,
        method: str,
        url: str,
        now: float,
        access_token: str | None,
        jkt: str | None,
    ) -> Proof:
        """``check``, positional: the guard's per-request path.

        A header seen before (its key built, its rules checked and a signature under it
        verified) is not parsed again: what it says is fixed by its text. The rest of the
        proof (payload, signature, claims) is checked in full every time."""
        policy = self.policy
        if type(proof) is not str or len(proof) > policy.max_proof_bytes or not proof.isascii():
            raise DPoPError("the DPoP header is not a compact JWS", code=ERR_DPOP_MALFORMED)
        data = proof.encode()
        header_end = data.find(b".")
        header_segment = data[:header_end] if header_end > 0 else data  # no dot: refused below
        known = self._headers.get(header_segment) if header_end > 0 else None
        if known is None:
            payload, thumbprint = self._first_sight(proof, header_segment, policy)
        else:
            key, thumbprint, alg = known
            # The allow-list is read on every call, as jws.verify does: a cached header does
            # not outlive a change of policy.
            if alg.name not in policy.algorithms:
                raise DPoPError(f"alg {alg.name} is not allowed for DPoP", code=ERR_DPOP_ALG)
            try:
                payload = jws.verify_routed(data, header_end, alg, key)
            except JoseError as exc:
                code = (
                    ERR_DPOP_SIGNATURE
                    if exc.code == ERR_JWS_SIGNATURE_INVALID
                    else ERR_DPOP_MALFORMED
                )
                raise DPoPError(f"DPoP proof refused: {exc}", code=code) from None
            except Exception as exc:  # a bug of ours must still not leak as a non-JoseError
                raise DPoPError(
                    f"DPoP proof could not be processed ({type(exc).__name__})",
                    code=ERR_DPOP_MALFORMED,
                ) from None
        return self._check_claims(payload, method, url, now, access_token, jkt, thumbprint)

    def _first_sight(
        self, proof: str, header_segment: bytes, policy: ProofPolicy
    ) -> tuple[bytes, str]:
        """A header not seen before: parse it (strictly, jws.decode_header), apply the header
        rules of §4.3, build its key and verify the proof with jws.verify; then remember it.
        Returns (payload, thumbprint)."""
        try:
            header = jws.decode_header(header_segment)
        except JoseError:
            raise DPoPError(
                "the DPoP proof header does not parse", code=ERR_DPOP_MALFORMED
            ) from None
        key, thumbprint = _embedded_key(header, policy)
        try:
            verified = jws.verify(proof, key, algorithms=policy.algorithms)
        except JoseError as exc:
            code = (
                ERR_DPOP_SIGNATURE if exc.code == ERR_JWS_SIGNATURE_INVALID else ERR_DPOP_MALFORMED
            )
            raise DPoPError(f"DPoP proof refused: {exc}", code=code) from None
        if len(self._headers) >= _HEADER_CACHE_SIZE:
            self._headers.clear()
        self._headers[header_segment] = (key, thumbprint, ALGORITHMS[verified.header["alg"]])
        return verified.payload, thumbprint

    def _check_claims(
        self,
        payload: bytes,
        method: str,
        url: str,
        now: float,
        access_token: str | None,
        jkt: str | None,
        thumbprint: str,
    ) -> Proof:
        policy = self.policy
        try:
            claims = orjson.loads(payload)
        except orjson.JSONDecodeError:
            claims = None
        if not isinstance(claims, dict):
            raise DPoPError("the DPoP proof payload is not a JSON object", code=ERR_DPOP_MALFORMED)
        jti = claims.get("jti")
        if type(jti) is not str or not jti or len(jti) > 256:
            raise DPoPError("the proof needs a jti string (1-256 characters)", code=ERR_DPOP_JTI)
        if claims.get("htm") != method:
            raise DPoPError(f"htm does not match the request method {method}", code=ERR_DPOP_HTM)
        htu = claims.get("htu")
        # The same text is the same URI; only a different spelling needs normalising.
        if type(htu) is not str or (
            htu != url
            and _memo(self._urls, htu, normalize_htu) != _memo(self._urls, url, normalize_htu)
        ):
            raise DPoPError("htu does not match the request URL", code=ERR_DPOP_HTU)
        iat = claims.get("iat")
        if type(iat) is not int and type(iat) is not float:
            raise DPoPError("the proof needs a numeric iat", code=ERR_DPOP_MALFORMED)
        if iat < now - policy.iat_window_seconds:
            raise DPoPError(
                f"the proof was made {now - iat:.0f} s ago, over the "
                f"{policy.iat_window_seconds:.0f} s window",
                code=ERR_DPOP_IAT_OLD,
            )
        if iat > now + policy.iat_leeway_seconds:
            raise DPoPError(
                f"the proof's iat is {iat - now:.0f} s in the future", code=ERR_DPOP_IAT_FUTURE
            )
        if access_token is not None:
            ath = claims.get("ath")
            if ath is None:
                raise DPoPError("the proof lacks ath (the access token's hash)", code=ERR_DPOP_ATH)
            if ath != _memo(self._hashes, access_token, access_token_hash):
                raise DPoPError("ath does not match the access token", code=ERR_DPOP_ATH)
        if jkt is not None and jkt != thumbprint:
            raise DPoPError(
                "the proof's key is not the key the token is bound to", code=ERR_DPOP_JKT
            )
        nonce = claims.get("nonce")
        if nonce is not None and type(nonce) is not str:
            raise DPoPError("nonce must be a string", code=ERR_DPOP_NONCE)
        if policy.check_nonce is not None and not policy.check_nonce(nonce):
            raise DPoPError("the proof needs a fresh server nonce", code=ERR_DPOP_NONCE)
        return Proof(jti, float(iat), thumbprint, nonce)


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    policy: ProofPolicy | None = None,
    access_token: str | None = None,
    jkt: str | None = None,
) -> Proof:
    """Check one proof (``ProofChecker.check`` without the key cache); raises DPoPError."""
    return ProofChecker(policy).check(
        proof, method=method, url=url, now=now, access_token=access_token, jkt=jkt
    )

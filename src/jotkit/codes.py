"""Every stable error code jotkit raises or answers: one constant each, and ``CATALOGUE``.

The list is closed. Code anywhere in jotkit names a code by its constant here, never by a
string it builds, so ``grep ERR_JWT_INVALID_AUD`` finds every place that raises it, and
``tests/test_error_catalogue.py`` fails on a code that is not listed, on a listed code that
nothing raises (unless it is ``reserved``), and on docs that name a code that does not exist.
``docs/errors.md`` is this table, rendered.

Each entry says what the code means and, where it reaches an HTTP answer, the status and
the ``error`` value of that answer: RFC 6750 §3.1 (``invalid_token``...), RFC 9449 §7.1
(``invalid_dpop_proof``, ``use_dpop_nonce``) or the server's own body value. A code with no
status is a library or command line failure that no HTTP answer carries. This module imports
nothing of jotkit: the JOSE core, the guard and the CLI all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CATALOGUE", "ErrorCode"]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One code: its ``meaning`` (one line), the HTTP ``status`` and ``error`` value it is
    answered with (None: never an HTTP answer), and, for a code that nothing raises yet,
    why it is kept (``reserved``)."""

    meaning: str
    status: int | None = None
    error: str | None = None
    reserved: str | None = None


_CATALOGUE: dict[str, ErrorCode] = {}
CATALOGUE: Mapping[str, ErrorCode] = _CATALOGUE
"""Code → entry, in the order of this file (the order of docs/errors.md)."""

_TOKEN = (401, "invalid_token")  # RFC 6750 §3.1: what a verifier answers for a bad token
_PROOF = (401, "invalid_dpop_proof")  # RFC 9449 §7.1
_BUSY = (503, "temporarily_unavailable")  # the verifier's own trouble, not the client's
_NONE: tuple[int | None, str | None] = (None, None)


def _code(
    code: str, meaning: str, answer: tuple[int | None, str | None] = _NONE, *, reserved: str = ""
) -> str:
    _CATALOGUE[code] = ErrorCode(meaning, answer[0], answer[1], reserved or None)
    return code


# -- JOSE core: token shape and algorithms (jotkit.jose) --------------------------------------
ERR_JOSE = _code("ERR_JOSE", "a JOSE failure with no more specific code", _TOKEN)
ERR_JWS_MALFORMED = _code(
    "ERR_JWS_MALFORMED", "not a well-formed compact JWS (segments, base64url, header)", _TOKEN
)
ERR_JWS_TOO_LARGE = _code(
    "ERR_JWS_TOO_LARGE", "the token is over max_token_bytes; nothing of it was decoded", _TOKEN
)
ERR_JWS_JSON_SERIALIZATION = _code(
    "ERR_JWS_JSON_SERIALIZATION", "a JWS in the JSON serialization; only compact is read", _TOKEN
)
ERR_JWE_NOT_SUPPORTED = _code(
    "ERR_JWE_NOT_SUPPORTED", "an encrypted JWE (5 segments, enc/zip...): only JWS is read", _TOKEN
)
ERR_JWS_SIGNATURE_INVALID = _code(
    "ERR_JWS_SIGNATURE_INVALID", "the signature does not verify with the selected key", _TOKEN
)
ERR_JOSE_ALG_UNSUPPORTED = _code(
    "ERR_JOSE_ALG_UNSUPPORTED", "an alg jotkit does not implement (none, in any spelling)", _TOKEN
)
ERR_JOSE_ALG_NOT_ALLOWED = _code(
    "ERR_JOSE_ALG_NOT_ALLOWED", "the alg is not allowed for this key or by the allow-list", _TOKEN
)
ERR_JOSE_CRIT_UNSUPPORTED = _code(
    "ERR_JOSE_CRIT_UNSUPPORTED", "a crit header: no critical extension is supported", _TOKEN
)

# -- JOSE core: keys --------------------------------------------------------------------------
ERR_JWK_INVALID = _code(
    "ERR_JWK_INVALID", "key material is unusable: malformed, too weak, or not for signatures"
)
ERR_JWK_ROCA = _code(
    "ERR_JWK_ROCA", "an RSA key with the ROCA fingerprint: its private key can be computed"
)
ERR_JWKS_NO_MATCHING_KEY = _code(
    "ERR_JWKS_NO_MATCHING_KEY", "no key of the set matches the token's kid and alg", _TOKEN
)
ERR_JWKS_MIXED_KEY_TYPES = _code(
    "ERR_JWKS_MIXED_KEY_TYPES", "a key set mixes shared secrets with public keys"
)

# -- JOSE core: claims ------------------------------------------------------------------------
ERR_JWT_CLAIMS_INVALID = _code(
    "ERR_JWT_CLAIMS_INVALID", "the payload is not a JSON object of claims", _TOKEN
)
ERR_JWT_CLAIM_INVALID = _code(
    "ERR_JWT_CLAIM_INVALID", "a claim with no code of its own is invalid (see .claim)", _TOKEN
)
ERR_JWT_EXPIRED = _code("ERR_JWT_EXPIRED", "exp is in the past (beyond the leeway)", _TOKEN)
ERR_JWT_NOT_YET_VALID = _code(
    "ERR_JWT_NOT_YET_VALID", "nbf is in the future (beyond the leeway)", _TOKEN
)
ERR_JWT_MAX_AGE_EXCEEDED = _code(
    "ERR_JWT_MAX_AGE_EXCEEDED", "the token is older than max_age (from its iat)", _TOKEN
)
ERR_JWT_REVOKED = _code(
    "ERR_JWT_REVOKED", "revoked: its jti, its session (sid) or its user's watermark", _TOKEN
)
ERR_JWT_SECRET_CLAIM = _code(
    "ERR_JWT_SECRET_CLAIM", "jwt.sign refuses a claim named like a secret (password...)"
)
ERR_JWT_INVALID_EXP = _code("ERR_JWT_INVALID_EXP", "exp is not a NumericDate", _TOKEN)
ERR_JWT_INVALID_NBF = _code("ERR_JWT_INVALID_NBF", "nbf is not a NumericDate", _TOKEN)
ERR_JWT_INVALID_IAT = _code(
    "ERR_JWT_INVALID_IAT", "iat is not a NumericDate, or is in the future", _TOKEN
)
ERR_JWT_INVALID_ISS = _code("ERR_JWT_INVALID_ISS", "iss is not the expected issuer", _TOKEN)
ERR_JWT_INVALID_AUD = _code(
    "ERR_JWT_INVALID_AUD", "aud is not the expected audience (or none was expected)", _TOKEN
)
ERR_JWT_INVALID_SUB = _code(
    "ERR_JWT_INVALID_SUB", "sub is not a string, or not the expected subject", _TOKEN
)
ERR_JWT_INVALID_TYP = _code(
    "ERR_JWT_INVALID_TYP", "the typ header is not the expected type (at+jwt...)", _TOKEN
)
ERR_JWT_INVALID_JTI = _code("ERR_JWT_INVALID_JTI", "jti is not a string", _TOKEN)
ERR_JWT_INVALID_SID = _code("ERR_JWT_INVALID_SID", "sid is not a string", _TOKEN)
ERR_JWT_INVALID_CLIENT_ID = _code("ERR_JWT_INVALID_CLIENT_ID", "client_id is not a string", _TOKEN)
ERR_JWT_INVALID_SCOPE = _code(
    "ERR_JWT_INVALID_SCOPE", "scope is not a space-separated string", _TOKEN
)
ERR_JWT_INVALID_CNF = _code(
    "ERR_JWT_INVALID_CNF", 'cnf is not an object with a "jkt" string', _TOKEN
)
ERR_JWT_MISSING_CLAIM = _code(
    "ERR_JWT_MISSING_CLAIM", "a required claim with no code of its own is absent", _TOKEN
)
ERR_JWT_MISSING_EXP = _code(
    "ERR_JWT_MISSING_EXP", "exp is required (the default) but absent", _TOKEN
)
ERR_JWT_MISSING_NBF = _code("ERR_JWT_MISSING_NBF", "nbf is required but absent", _TOKEN)
ERR_JWT_MISSING_IAT = _code(
    "ERR_JWT_MISSING_IAT", "iat is required (or max_age is set) but absent", _TOKEN
)
ERR_JWT_MISSING_ISS = _code("ERR_JWT_MISSING_ISS", "iss is required but absent", _TOKEN)
ERR_JWT_MISSING_AUD = _code("ERR_JWT_MISSING_AUD", "aud is required but absent", _TOKEN)
ERR_JWT_MISSING_SUB = _code("ERR_JWT_MISSING_SUB", "sub is required but absent", _TOKEN)
ERR_JWT_MISSING_JTI = _code("ERR_JWT_MISSING_JTI", "jti is required but absent", _TOKEN)
ERR_JWT_MISSING_SID = _code("ERR_JWT_MISSING_SID", "sid is required but absent", _TOKEN)
ERR_JWT_MISSING_CLIENT_ID = _code(
    "ERR_JWT_MISSING_CLIENT_ID", "client_id is required but absent", _TOKEN
)
ERR_JWT_MISSING_SCOPE = _code("ERR_JWT_MISSING_SCOPE", "scope is required but absent", _TOKEN)


# -- Verification policy (jotkit.jose.Policy): refused when built, never by a token -----------
ERR_POLICY_INVALID = _code("ERR_POLICY_INVALID", "a verification policy is unusable")
ERR_POLICY_ALGORITHMS = _code(
    "ERR_POLICY_ALGORITHMS", "policy: algorithms empty, unknown or misspelt"
)
ERR_POLICY_ISSUER = _code("ERR_POLICY_ISSUER", "policy: issuer empty or not a string")
ERR_POLICY_AUDIENCE = _code(
    "ERR_POLICY_AUDIENCE", "policy: audience empty or not a string (or strings)"
)
ERR_POLICY_SUBJECT = _code("ERR_POLICY_SUBJECT", "policy: subject empty or not a string")
ERR_POLICY_TYP = _code("ERR_POLICY_TYP", "policy: typ empty or not a string")
ERR_POLICY_LEEWAY = _code("ERR_POLICY_LEEWAY", "policy: leeway negative or not finite")
ERR_POLICY_MAX_AGE = _code("ERR_POLICY_MAX_AGE", "policy: max_age negative or not finite")
ERR_POLICY_REQUIRE = _code(
    "ERR_POLICY_REQUIRE", "policy: require is a bare string, not a list of claim names"
)
ERR_POLICY_MAX_TOKEN_BYTES = _code(
    "ERR_POLICY_MAX_TOKEN_BYTES", "policy: max_token_bytes is not a positive integer"
)
ERR_POLICY_CLOCK = _code("ERR_POLICY_CLOCK", "policy: clock is not callable")

# -- DPoP proofs (RFC 9449; jotkit.jose.dpop, the guard) ----------------------------------------
ERR_DPOP_MISSING = _code("ERR_DPOP_MISSING", "a DPoP request without a DPoP proof header", _PROOF)
ERR_DPOP_MULTIPLE = _code("ERR_DPOP_MULTIPLE", "more than one DPoP header (§4.3)", _PROOF)
ERR_DPOP_MALFORMED = _code("ERR_DPOP_MALFORMED", "the proof is not a well-formed JWS", _PROOF)
ERR_DPOP_TYP = _code("ERR_DPOP_TYP", 'the proof\'s typ is not "dpop+jwt"', _PROOF)
ERR_DPOP_ALG = _code("ERR_DPOP_ALG", "the proof's alg is not an allowed asymmetric one", _PROOF)
ERR_DPOP_JWK = _code("ERR_DPOP_JWK", "the proof's jwk header is missing or not a key", _PROOF)
ERR_DPOP_JWK_PRIVATE = _code(
    "ERR_DPOP_JWK_PRIVATE", "the proof's jwk carries private key members", _PROOF
)
ERR_DPOP_SIGNATURE = _code(
    "ERR_DPOP_SIGNATURE", "the proof's signature does not verify with its jwk", _PROOF
)
ERR_DPOP_HTM = _code("ERR_DPOP_HTM", "htm is not this request's method", _PROOF)
ERR_DPOP_HTU = _code("ERR_DPOP_HTU", "htu is not this request's URL", _PROOF)
ERR_DPOP_IAT_TOO_OLD = _code("ERR_DPOP_IAT_TOO_OLD", "the proof's iat is too old", _PROOF)
ERR_DPOP_IAT_IN_FUTURE = _code(
    "ERR_DPOP_IAT_IN_FUTURE", "the proof's iat is ahead of the clock", _PROOF
)
ERR_DPOP_JTI = _code("ERR_DPOP_JTI", "the proof has no usable jti", _PROOF)
ERR_DPOP_REPLAYED = _code("ERR_DPOP_REPLAYED", "the proof's jti was seen before", _PROOF)
ERR_DPOP_ATH = _code("ERR_DPOP_ATH", "ath is not the hash of the access token", _PROOF)
ERR_DPOP_JKT_MISMATCH = _code(
    "ERR_DPOP_JKT_MISMATCH", "the proof's key is not the key the token is bound to", _PROOF
)
ERR_DPOP_NONCE = _code(
    "ERR_DPOP_NONCE", "the server nonce is missing or stale (§8, §9)", (401, "use_dpop_nonce")
)
ERR_DPOP_BOUND_TOKEN_AS_BEARER = _code(
    "ERR_DPOP_BOUND_TOKEN_AS_BEARER", "a DPoP-bound token sent with the Bearer scheme", _TOKEN
)
ERR_DPOP_TOKEN_NOT_BOUND = _code(
    "ERR_DPOP_TOKEN_NOT_BOUND", "the DPoP scheme with a token that has no cnf.jkt", _TOKEN
)
ERR_DPOP_REPLAY_CACHE_UNAVAILABLE = _code(
    "ERR_DPOP_REPLAY_CACHE_UNAVAILABLE", "the shared replay cache cannot be reached", _BUSY
)

# -- Guard (resource servers) -----------------------------------------------------------------
ERR_GUARD_NO_CREDENTIALS = _code(
    "ERR_GUARD_NO_CREDENTIALS",
    "no token: a bare challenge, no error in it (RFC 6750 §3.1)",
    (401, "missing_token"),
)
ERR_GUARD_BAD_AUTHORIZATION = _code(
    "ERR_GUARD_BAD_AUTHORIZATION",
    "an Authorization header that is not Bearer <token>",
    (400, "invalid_request"),
)
ERR_GUARD_INSUFFICIENT_SCOPE = _code(
    "ERR_GUARD_INSUFFICIENT_SCOPE",
    "a valid token without a scope the resource needs",
    (403, "insufficient_scope"),
)
ERR_JWKS_UNAVAILABLE = _code(
    "ERR_JWKS_UNAVAILABLE", "the issuer's JWKS cannot be fetched and no fresh copy is held", _BUSY
)

# -- Revocation feed --------------------------------------------------------------------------
ERR_REVOCATION_FEED_STALE = _code(
    "ERR_REVOCATION_FEED_STALE", "the feed was not heard from within the staleness bound", _BUSY
)
ERR_REVOCATION_SET_FULL = _code(
    "ERR_REVOCATION_SET_FULL", "the set is at max_entries: every token is refused", _BUSY
)
ERR_REVOCATION_FEED_UNAVAILABLE = _code(
    "ERR_REVOCATION_FEED_UNAVAILABLE", "the HTTP feed cannot be reached or answered an error"
)
ERR_REVOCATION_FEED_MALFORMED = _code(
    "ERR_REVOCATION_FEED_MALFORMED", "the feed's answer breaks the protocol; none of it applied"
)

# -- Server and store -------------------------------------------------------------------------
ERR_CONFIG = _code("ERR_CONFIG", "a setting is missing, malformed or unsafe")
ERR_STORE = _code(
    "ERR_STORE", "the database is unreachable or refused the operation", (503, "unavailable")
)
ERR_CONFLICT = _code(
    "ERR_CONFLICT", "already stored: a user's email, a key another process added", (409, "conflict")
)

# -- Command line -----------------------------------------------------------------------------
ERR_MISSING_EXTRA = _code("ERR_MISSING_EXTRA", "an optional part's extra is not installed")
ERR_OUTPUT = _code("ERR_OUTPUT", "the output (or input) stream failed: disk full, closed")
ERR_UNEXPECTED = _code("ERR_UNEXPECTED", "a failure no command turned into its own code")
ERR_NO_TOKEN = _code("ERR_NO_TOKEN", "no token given (argument, file or stdin)")
ERR_FILE_UNREADABLE = _code("ERR_FILE_UNREADABLE", "a file cannot be read, or is too large")
ERR_FILE_UNWRITABLE = _code("ERR_FILE_UNWRITABLE", "a file cannot be written")
ERR_FILE_EXISTS = _code("ERR_FILE_EXISTS", "the output file exists (give --force)")
ERR_SECRET_ENV_UNSET = _code("ERR_SECRET_ENV_UNSET", "the secret's environment variable is empty")
ERR_KEY_NOT_PRIVATE = _code("ERR_KEY_NOT_PRIVATE", "signing needs a private key")
ERR_KEY_AMBIGUOUS = _code("ERR_KEY_AMBIGUOUS", "the file holds several private keys: pick a kid")
ERR_JWKS_FETCH = _code("ERR_JWKS_FETCH", "the JWK Set at --jwks cannot be fetched")
ERR_JWKS_INVALID = _code("ERR_JWKS_INVALID", "the fetched JWK Set is not one, or has no usable key")
ERR_JWKS_SECRET_KEY = _code("ERR_JWKS_SECRET_KEY", "a JWK Set to publish holds a secret key")
ERR_JWKS_DUPLICATE_KID = _code("ERR_JWKS_DUPLICATE_KID", "two keys to publish share a kid")
ERR_LISTEN = _code("ERR_LISTEN", "jotkit serve cannot listen on the host and port")
ERR_PUBLISH_AHEAD_TOO_SHORT = _code(
    "ERR_PUBLISH_AHEAD_TOO_SHORT", "a key rotation remote verifiers would not see in time"
)
ERR_PASSWORD_TOO_SHORT = _code("ERR_PASSWORD_TOO_SHORT", "the password is under 8 characters")
ERR_PASSWORD_TOO_LONG = _code("ERR_PASSWORD_TOO_LONG", "the password is over 1024 bytes")
ERR_NOT_FOUND = _code("ERR_NOT_FOUND", "no such user")

# -- Web page (src/jotkit/web/static/*.js) ----------------------------------------------------
ERR_WEBCRYPTO_UNAVAILABLE = _code(
    "ERR_WEBCRYPTO_UNAVAILABLE", "the browser has no WebCrypto here (not a secure context)"
)
ERR_JWKS_UNREACHABLE = _code("ERR_JWKS_UNREACHABLE", "the page cannot fetch this server's JWKS")

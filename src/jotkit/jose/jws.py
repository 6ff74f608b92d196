"""JWS compact serialization (RFC 7515 §7.1): strict parsing, signing and verification.

The algorithm that checks a signature comes from the caller's allow-list and the key, never
from the token alone (RFC 8725 §2.1, §3.1): the header's ``alg`` must be in both, ``none`` is
not an algorithm here, ``kid`` only chooses among the caller's keys, and ``jwk``/``jku``/
``x5u``/``x5c`` headers are never used to find a key (CVE-2018-0114).
"""

from __future__ import annotations

import hmac
import json
from binascii import a2b_base64
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from jotkit.codes import (
    ERR_JOSE_CRIT_UNSUPPORTED,
    ERR_JWE_NOT_SUPPORTED,
    ERR_JWS_JSON_SERIALIZATION,
)
from jotkit.jose.algorithms import ALGORITHMS, Algorithm
from jotkit.jose.b64 import (
    CANONICAL_TAILS,
    PADDING,
    URL_TO_STD,
    b64decode,
    b64encode,
    b64encode_bytes,
)
from jotkit.jose.errors import (
    InvalidSignature,
    JoseError,
    KeyMismatch,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
)
from jotkit.jose.keys import Key
from jotkit.jose.keyset import KeySet

__all__ = ["DEFAULT_MAX_TOKEN_BYTES", "Verified", "decode_header", "sign", "verify"]

DEFAULT_MAX_TOKEN_BYTES = 8192
_HEADER_MEMO_SIZE = 256
# Header members whose value, if present, must be a string for us to reason about it.
_STRING_MEMBERS = ("kid", "typ", "cty")
# Header members that only a JWE has (RFC 7516 §4.1.2-4.1.3, RFC 7518 §4.6.1, §4.7.1, §4.8.1):
# a "JWS" carrying one was built to be decrypted, or by a producer that confuses the two, and
# a verifier must not guess which (RFC 8725bis). "zip" is among them: a JWS payload is never
# compressed, and inflating one is a decompression bomb on the verify path.
_JWE_MEMBERS = frozenset({"enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"})


@dataclass(frozen=True, slots=True)
class Verified:
    """A JWS whose signature checked out: its protected header, payload bytes and key."""

    header: dict[str, Any]
    payload: bytes
    key: Key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    header = dict(pairs)
    if len(header) != len(pairs):
        # RFC 7515 §4: duplicate names MUST be rejected; two parsers picking different ones
        # is how a header says one thing to a gateway and another to the verifier.
        raise MalformedToken("the header repeats a member name")
    return header


def _refuse_constant(name: str) -> Any:
    raise MalformedToken(f"{name} is not a JSON number")


def decode_header(segment: str | bytes) -> dict[str, Any]:
    """Decode a protected header segment: strict base64url, a JSON object, no duplicate
    names, no NaN/Infinity. Says nothing about whether its ``alg`` is acceptable."""
    try:
        # Decode as UTF-8 ourselves (RFC 8725 §3.7): json.loads(bytes) would also guess UTF-16.
        header = json.loads(
            b64decode(segment, "the header").decode("utf-8"),
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
        )
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise MalformedToken("the header is not valid JSON") from None
    if type(header) is not dict:
        raise MalformedToken("the header must be a JSON object")
    return header


def shape_error(data: bytes, count: int) -> MalformedToken:
    """The error for a token that is not a 3-segment compact JWS, naming what it is instead."""
    if data.lstrip()[:1] == b"{":
        return MalformedToken(
            "this is a JWS in the JSON serialization (RFC 7515 §7.2); only the compact "
            "serialization is verified",
            code=ERR_JWS_JSON_SERIALIZATION,
        )
    if count == 5:
        return MalformedToken(
            "5 segments: this is an encrypted JWE (RFC 7516), not a signed JWS; "
            "JWE is not supported",
            code=ERR_JWE_NOT_SUPPORTED,
        )
    return MalformedToken(f"a compact JWS has 3 segments, this has {count}")


def _parse_header(segment: bytes) -> tuple[dict[str, Any], Algorithm]:
    """Decode a protected header and check what it asks for: a known ``alg`` (compared
    case-sensitively, RFC 7515 §4.1.1), no ``crit``, no JWE member."""
    header = decode_header(segment)
    jwe_members = _JWE_MEMBERS.intersection(header)
    if jwe_members:
        raise MalformedToken(
            f"the header has JWE member(s) {sorted(jwe_members)}: this is not a plain JWS "
            "(JWE and compressed payloads are not supported)",
            code=ERR_JWE_NOT_SUPPORTED,
        )
    name = header.get("alg")
    if type(name) is not str:
        raise MalformedToken('the header has no string "alg"')
    alg = ALGORITHMS.get(name)
    if alg is None:
        # RFC 7515 §4.1.1: "alg" is case-sensitive, so "None" or "hs256" is no algorithm at
        # all; "none" in any case gets the same code and its own message.
        if name.lower() == "none":
            raise UnsupportedAlgorithm('alg "none" (unsigned tokens) is never accepted')
        raise UnsupportedAlgorithm(f"unsupported algorithm {name[:32]!r}")
    if "crit" in header:
        # RFC 7515 §4.1.11: extensions we do not implement must make the token invalid.
        raise MalformedToken(
            "the header lists critical extensions (crit) this verifier does not understand",
            code=ERR_JOSE_CRIT_UNSUPPORTED,
        )
    if header.get("b64", True) is not True:
        raise MalformedToken("unencoded payloads (b64: false, RFC 7797) are not supported")
    for member in _STRING_MEMBERS:
        if member in header and type(header[member]) is not str:
            raise MalformedToken(f'the header member "{member}" must be a string')
    return header, alg


def _route(
    segment: bytes, keys: Key | KeySet, algorithms: Collection[str] | None
) -> tuple[dict[str, Any], Algorithm, tuple[Key, ...]]:
    """Parse a protected header and find what may check its signature: (header, algorithm,
    candidate keys). The header's ``alg`` must be allowed by the caller and by the key (or
    some key of the set), and its ``kid``, if any, only chooses among the caller's keys."""
    header, alg = _parse_header(segment)
    name = alg.name
    if algorithms is not None:
        _refuse_unlisted(name, algorithms)
    kid = header.get("kid")
    if isinstance(keys, Key):
        if name not in keys.jws_verify_algorithms:
            if not keys.can("verify"):
                raise KeyMismatch("this key's use/key_ops do not allow verification")
            raise KeyMismatch(keys.jws_refusal(name))
        if kid is not None and keys.kid is not None and kid != keys.kid:
            raise KeyNotFound(f"token kid {kid[:64]!r} is not this key's kid {keys.kid!r}")
        return header, alg, (keys,)
    candidates = tuple(keys.candidates(kid, name))
    if not candidates:
        which = f"kid {kid[:64]!r}" if kid is not None else "no kid"
        raise KeyNotFound(f"no key in the set for {which} and algorithm {name}")
    return header, alg, candidates


def _refuse_unlisted(name: str, algorithms: Collection[str]) -> None:
    """The caller's own allow-list, checked on every call (it is not part of the memo)."""
    if isinstance(algorithms, str):
        algorithms = (algorithms,)
    if name not in algorithms:
        raise KeyMismatch(f"algorithm {name} is not in the allowed list {sorted(algorithms)}")


def _as_text(token: Any, max_token_bytes: int) -> str:
    """A bytes token as text, after its size cap; anything else is not a token."""
    if not isinstance(token, bytes | bytearray):
        raise MalformedToken("a token is a string")
    if len(token) > max_token_bytes:
        raise TokenTooLarge(f"token is {len(token)} bytes, over the {max_token_bytes}-byte cap")
    try:
        return bytes(token).decode("ascii")
    except UnicodeDecodeError:
        raise MalformedToken("a token is ASCII text") from None


def verify_compact(
    token: Any,
    keys: Key | KeySet,
    algorithms: Collection[str] | None,
    max_token_bytes: int,
) -> tuple[dict[str, Any], bytes, Key]:
    """Parse and check a compact JWS; return (header, payload bytes, key). Raises JoseError.
    The core's internal interface (jws.verify, jwt.verify, Verifier), not in ``__all__``.

    A header's route (its parse, algorithm and candidate keys) is memoized per key source by
    its base64url text once a signature made under it has verified: a service sees the same
    few headers millions of times, and their parse (stdlib json with a duplicate check) costs
    ~4 µs. Only authentic headers enter, so forged ones cannot evict the real ones; the size
    is bounded all the same. The caller's ``algorithms`` are checked on every call.

    The payload's base64url is decoded before the signature is checked (its JSON is parsed by
    the caller only after): a malformed token is refused without paying for a 20-500 µs
    primitive, and decoding it beside the signature's own decode runs on warm caches (RS256
    overhead over the raw verify read 5.5 -> 5.0 µs in five A/B runs of the two orders)."""
    if type(token) is not str:
        token = _as_text(token, max_token_bytes)
    # The cap is checked before any decoding, so a huge token costs a len() and nothing more.
    if len(token) > max_token_bytes:
        raise TokenTooLarge(f"token is {len(token)} bytes, over the {max_token_bytes}-byte cap")
    # Encoded once: the signing input is a slice of it, and each segment decodes from bytes.
    # isascii() reads a flag; encode() with no codec name skips the name lookup of "ascii".
    if not token.isascii():
        raise MalformedToken("a token is ASCII text")
    data = token.encode()
    try:
        header_segment, payload_segment, signature_segment = data.split(b".")
    except ValueError:
        raise shape_error(data, data.count(b".") + 1) from None
    try:
        memo = keys.jws_header_memo
    except AttributeError:
        raise KeyMismatch("verify needs a Key or a KeySet") from None
    route = memo.get(header_segment)
    if route is not None:
        header, alg, candidates = route
        if algorithms is not None:
            _refuse_unlisted(alg.name, algorithms)
    else:
        if header_segment.lstrip()[:1] == b"{":  # JSON serialization with exactly two dots
            raise shape_error(data, 3)
        header, alg, candidates = _route(header_segment, keys, algorithms)
    signing_input = data[: len(header_segment) + len(payload_segment) + 1]
    # b64decode, inlined for both segments, and the signature checked here rather than in a
    # helper: after a 20-500 µs primitive this path runs on cold caches, where it read
    # 0.2-0.3 µs less overhead than through those calls, for every asymmetric algorithm
    # (benchmarks/README.md). Each length mod 4 is taken once for the padding and the
    # canonical check.
    payload_rest = len(payload_segment) & 3
    signature_rest = len(signature_segment) & 3
    try:
        payload = a2b_base64(
            payload_segment.translate(URL_TO_STD) + PADDING[payload_rest], strict_mode=True
        )
        signature = a2b_base64(
            signature_segment.translate(URL_TO_STD) + PADDING[signature_rest], strict_mode=True
        )
    except ValueError:
        raise MalformedToken("the payload or signature is not strict unpadded base64url") from None
    # A non-canonical spelling (non-zero unused bits in the last character) would be a second
    # text for one payload or one signature (b64.is_canonical, inlined: ~40 ns each).
    tail = CANONICAL_TAILS[payload_rest]
    if tail is not None and payload_segment[-1] not in tail:
        raise MalformedToken(
            "the payload is not canonical base64url (its last character has non-zero unused bits)"
        )
    tail = CANONICAL_TAILS[signature_rest]
    if tail is not None and signature_segment[-1] not in tail:
        raise InvalidSignature("the signature is not canonical base64url")
    if alg.kty == "oct":
        hash_name = alg.hash_name or ""
        for key in candidates:
            if hmac.compare_digest(key.jws_mac(hash_name, signing_input), signature):
                break
        else:
            raise InvalidSignature(f"{alg.name} signature does not verify")
    else:
        for key in candidates:
            if alg.verify(key.jws_verify_material, signing_input, signature):
                break
        else:
            raise InvalidSignature(f"{alg.name} signature does not verify")
    if route is None:
        if len(memo) >= _HEADER_MEMO_SIZE:
            memo.clear()
        memo[header_segment] = (header, alg, candidates)
    return header, payload, key


def verify_routed(data: bytes, header_end: int, alg: Algorithm, key: Key) -> bytes:
    """The payload of the compact JWS ``data`` (ASCII bytes) whose protected header,
    ``data[:header_end]``, the caller has already parsed and checked, and has seen a signature
    by ``key`` under ``alg`` verify. The core's internal interface, not in ``__all__``: the
    DPoP checker's per-request path, which caches each embedded key by its header text.

    What is left to check is what verify_compact checks on a header memo hit: exactly three
    segments, a strict canonical base64url payload and signature, and the signature. Raises
    MalformedToken or InvalidSignature. (verify_compact keeps its own inlined copy of these
    lines; see its docstring.)"""
    try:
        payload_segment, signature_segment = data[header_end + 1 :].split(b".")
    except ValueError:
        raise shape_error(data, data.count(b".") + 1) from None
    payload_rest = len(payload_segment) & 3
    signature_rest = len(signature_segment) & 3
    try:
        payload = a2b_base64(
            payload_segment.translate(URL_TO_STD) + PADDING[payload_rest], strict_mode=True
        )
        signature = a2b_base64(
            signature_segment.translate(URL_TO_STD) + PADDING[signature_rest], strict_mode=True
        )
    except ValueError:
        raise MalformedToken("the payload or signature is not strict unpadded base64url") from None
    tail = CANONICAL_TAILS[payload_rest]
    if tail is not None and payload_segment[-1] not in tail:
        raise MalformedToken(
            "the payload is not canonical base64url (its last character has non-zero unused bits)"
        )
    tail = CANONICAL_TAILS[signature_rest]
    if tail is not None and signature_segment[-1] not in tail:
        raise InvalidSignature("the signature is not canonical base64url")
    signing_input = data[: header_end + 1 + len(payload_segment)]
    if not alg.verify(key.jws_verify_material, signing_input, signature):
        raise InvalidSignature(f"{alg.name} signature does not verify")
    return payload


def verify(
    token: str | bytes,
    key_or_keyset: Key | KeySet,
    *,
    algorithms: Collection[str] | None = None,
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
) -> Verified:
    """Verify a compact JWS and return its header, payload bytes and the key that matched.

    The accepted algorithms are ``algorithms`` (if given) intersected with the key's own
    (its ``alg`` if bound, else every algorithm of its type and curve). Raises only JoseError.
    """
    try:
        header, payload, key = verify_compact(token, key_or_keyset, algorithms, max_token_bytes)
        return Verified(dict(header), payload, key)
    except JoseError:
        raise
    except Exception as exc:  # a bug of ours must still not leak as a non-JoseError
        raise MalformedToken(f"token could not be processed ({type(exc).__name__})") from None


def _encoded_header(key: Key, name: str, typ: str | None, extra: Mapping[str, Any] | None) -> str:
    """The base64url protected header for signing with ``key`` and algorithm ``name``."""
    protected: dict[str, Any] = {"alg": name}
    if typ is not None:
        protected["typ"] = typ
    if key.kid is not None:
        protected["kid"] = key.kid
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise MalformedToken("header must be a mapping")
        if extra.get("alg", name) != name:
            raise KeyMismatch("the header's alg differs from the signing algorithm")
        if "crit" in extra or extra.get("b64", True) is not True:
            raise MalformedToken("critical extensions are not supported when signing")
        if _JWE_MEMBERS.intersection(extra):
            raise MalformedToken(
                f"JWE header members {sorted(_JWE_MEMBERS.intersection(extra))} cannot be "
                "signed into a JWS (the verifier refuses them)",
                code=ERR_JWE_NOT_SUPPORTED,
            )
        protected.update(extra)
        protected["alg"] = name
        protected = {k: v for k, v in protected.items() if v is not None}
    try:
        return b64encode(orjson.dumps(protected))
    except TypeError as exc:
        raise MalformedToken(f"header is not JSON-serializable: {exc}") from None


def sign_compact(
    payload: bytes, key: Key, alg: str | None, typ: str | None, header: Mapping[str, Any] | None
) -> str:
    """Sign ``payload`` as a compact JWS. The core's internal interface (jws.sign and
    jwt.sign), not in ``__all__``: arguments unchecked, positional, for the hot path."""
    # Without extra header members, the (algorithm, encoded header) pair depends only on the
    # key and the request, so it is computed once per key: ~1 µs off every HMAC signature.
    prepared = key.jws_signing_headers.get((alg, typ)) if header is None else None
    if prepared is None:
        name = key.signing_algorithm(alg)
        prepared = (ALGORITHMS[name], _encoded_header(key, name, typ, header).encode() + b".")
        if header is None:
            key.jws_signing_headers[(alg, typ)] = prepared
    algorithm, header_prefix = prepared
    # Built as bytes and decoded once: each str<->bytes round trip costs ~0.1 µs here.
    signing_input = header_prefix + b64encode_bytes(payload)
    raw = (
        key.jws_mac(algorithm.hash_name or "", signing_input)
        if algorithm.kty == "oct"
        else algorithm.sign(key.jws_sign_material, signing_input)
    )
    signature = b64encode_bytes(raw)
    return (signing_input + b"." + signature).decode()


def sign(
    payload: bytes,
    key: Key,
    *,
    alg: str | None = None,
    header: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` as a compact JWS with ``key`` (``alg`` defaults to the key's).

    ``header`` adds protected header members; it cannot change ``alg`` and cannot carry
    ``crit``. The key's ``kid`` is included when it has one.
    """
    if not isinstance(payload, bytes | bytearray):
        raise MalformedToken("a JWS payload is bytes")
    if not isinstance(key, Key):
        raise KeyMismatch("sign needs a Key")
    return sign_compact(bytes(payload), key, alg, None, header)

"""Strict, canonical, unpadded base64url (RFC 7515 §2, RFC 4648 §5 and §3.5).

Decoding rejects padding, the standard alphabet's ``+`` and ``/``, whitespace, any other
byte outside ``[A-Za-z0-9_-]``, a length of 1 mod 4 (6 bits cannot make a byte) and a last
character whose unused low bits are not zero (RFC 4648 §3.5 lets a decoder refuse it): a
lenient decoder lets one value have many spellings, which defeats caches and deny-lists keyed
by the text, and makes a signature or a key member malleable (Wycheproof's base64 cases).
"""

from __future__ import annotations

import binascii

from jotkit.jose.errors import MalformedToken

__all__ = [
    "CANONICAL_TAILS",
    "PADDING",
    "URL_TO_STD",
    "b64decode",
    "b64encode",
    "b64encode_bytes",
    "is_canonical",
]

# One translate maps the url alphabet onto the standard one *and* poisons every byte that must
# not appear ("+", "/", "=" -> "!"), so binascii's strict mode rejects them in C. A regex check
# followed by the lenient decoder costs ~2x more (benchmarks/bench_jose.py, b64 section).
_TO_STD = bytearray(range(256))
_TO_STD[ord("-")] = ord("+")
_TO_STD[ord("_")] = ord("/")
for _poisoned in b"+/=":
    _TO_STD[_poisoned] = ord("!")
URL_TO_STD = bytes(_TO_STD)
_STD_TO_URL = bytes.maketrans(b"+/", b"-_")
# Indexed by length mod 4; length 1 mod 4 gets "===", which strict mode refuses.
PADDING = (b"", b"===", b"==", b"=")
# The last characters whose unused low bits are zero, by length mod 4 (RFC 4648 §3.5):
# 2 characters carry 8 bits (4 unused), 3 carry 16 (2 unused), 4 carry 24 (none). Checking
# the last character is all canonicity needs once the strict decode has passed (~40 ns).
CANONICAL_TAILS = (None, None, frozenset(b"AQgw"), frozenset(b"AEIMQUYcgkosw048"))


def is_canonical(raw: bytes) -> bool:
    """Whether strict base64url text ``raw`` is the one spelling of what it decodes to."""
    tail = CANONICAL_TAILS[len(raw) & 3]
    return tail is None or raw[-1] in tail


def b64decode(segment: str | bytes, what: str = "segment") -> bytes:
    """Decode one strict, canonical base64url segment; raise MalformedToken on any deviation
    (its message names ``what`` was decoded)."""
    try:
        raw = segment.encode("ascii") if isinstance(segment, str) else segment
        decoded = binascii.a2b_base64(
            raw.translate(URL_TO_STD) + PADDING[len(raw) & 3], strict_mode=True
        )
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedToken(f"{what} is not strict unpadded base64url") from None
    if not is_canonical(raw):
        raise MalformedToken(
            f"{what} is not canonical base64url (its last character has non-zero unused bits)"
        )
    return decoded


def b64encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url text."""
    return b64encode_bytes(data).decode()


def b64encode_bytes(data: bytes) -> bytes:
    """Encode bytes as unpadded base64url, as ASCII bytes (the signing path stays in bytes)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_STD_TO_URL)

"""A refresh token's successor, sealed so that only the holder of the spent token can open it.

The reuse window (docs/lifecycle.md) hands the family's current refresh token to a client that
presents the previous one, yet the store keeps refresh tokens only as SHA-256 hashes. So each
rotation stores the successor sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the
spent token itself: its holder can open it, a copy of the database cannot (it holds the spent
token's hash, never its 256 random bits).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["open_successor", "seal_successor"]

_INFO = b"jotkit refresh token successor v1"
_NONCE_BYTES = 12


def seal_successor(spent_token: str, successor: str) -> bytes:
    """``successor`` encrypted under a key only ``spent_token`` yields (nonce + ciphertext)."""
    # A random nonce: concurrent rotations of one token each seal under the same key (only
    # the winner's is stored, but every one is encrypted).
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + _aead(spent_token).encrypt(nonce, successor.encode(), None)


def open_successor(spent_token: str, sealed: bytes) -> str | None:
    """The successor ``seal_successor`` sealed, or None if it does not open (altered data)."""
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    try:
        return _aead(spent_token).decrypt(nonce, ciphertext, None).decode()
    except InvalidTag:
        return None


def _aead(spent_token: str) -> AESGCM:
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return AESGCM(kdf.derive(spent_token.encode()))

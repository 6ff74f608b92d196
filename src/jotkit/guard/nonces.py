"""Server-provided DPoP nonces (RFC 9449 §8, §9) that need no shared state but a secret.

A nonce is ``<window>.<MAC>``: the index of the current time window and an HMAC-SHA256 of it
under a secret every instance holds. Any instance with the secret accepts a nonce another made,
with no lookup; nonces rotate every ``window_seconds``, and one is accepted in its own window
and the next (so a nonce handed out just before a rotation still works once), plus one window
ahead for instances whose clocks run slightly apart. A nonce two windows old is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from jotkit.jose.b64 import b64encode

__all__ = ["DPoPNonces"]

_MAC_BYTES = 16  # 128 bits: forging one is as hard as guessing a random 128-bit value
_MAX_NONCE = 64
_CONTEXT = b"jotkit dpop nonce v1:"


class DPoPNonces:
    """Make and check stateless rotating nonces from ``secret`` (at least 32 bytes)."""

    def __init__(
        self,
        secret: bytes,
        *,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``window_seconds``: how often the nonce changes; ``clock``: wall-clock seconds,
        which must agree across instances to within a window."""
        if len(secret) < 32:
            raise ValueError("a DPoP nonce secret needs at least 32 bytes")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self._secret = secret
        self.window_seconds = window_seconds
        self._clock = clock

    def _window(self) -> int:
        return int(self._clock() // self.window_seconds)

    def _mac(self, window: int) -> str:
        digest = hmac.new(self._secret, _CONTEXT + str(window).encode(), hashlib.sha256)
        return b64encode(digest.digest()[:_MAC_BYTES])

    def fresh(self) -> str:
        """The nonce of the current window (the value of a ``DPoP-Nonce`` header)."""
        window = self._window()
        return f"{window}.{self._mac(window)}"

    def accepts(self, nonce: str | None) -> bool:
        """True for a nonce this secret made in the current window, the one before, or the
        one after (clock differences between instances); False for anything else."""
        if nonce is None or len(nonce) > _MAX_NONCE:
            return False
        window_text, _, mac = nonce.partition(".")
        if not window_text.isascii() or not window_text.isdigit():
            return False
        window = int(window_text)
        if abs(window - self._window()) > 1:
            return False
        return hmac.compare_digest(mac.encode(), self._mac(window).encode())

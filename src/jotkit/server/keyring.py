"""The server's signing keys: which one signs now, which are published, and rotation.

Life of a key (RFC 7517 JWKS, published at /.well-known/jwks.json):

1. created by ``rotate()`` and published at once, but it only starts signing at
   ``activates_at`` = now + ``key_publish_ahead_seconds``, so every verifier caching the JWKS
   has seen it before the first token it signs arrives;
2. signs from ``activates_at`` until a newer key activates (``retired_at``);
3. stays published until ``remove_after`` = retirement + access token lifetime + skew, when
   every token it signed has expired; then it is deleted.

No token ever fails verification because of a rotation. Private keys are encrypted at rest
(AES-256-GCM, key derived by HKDF-SHA256 from ``master_key``) when a master key is set.
"""

from __future__ import annotations

import os
import threading

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from jotkit.jose import Key, KeySet
from jotkit.jose.b64 import b64decode, b64encode
from jotkit.server.errors import ApiError
from jotkit.server.settings import ConfigError, Settings
from jotkit.store import KeyRecord, Store

__all__ = ["Keyring"]

_ENCRYPTED = "aesgcm:"


class Keyring:
    """Signing keys loaded from the store, refreshed by ``reload()`` (other processes rotate)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        """Bind to the store; call ``load()`` before use."""
        self._settings = settings
        self._store = store
        self._aead = _aead(settings.master_key) if settings.master_key else None
        self._lock = threading.Lock()
        self._records: list[tuple[KeyRecord, Key]] = []
        self._published = KeySet([])
        self._jwks_json = b'{"keys":[]}'
        if settings.hs256:
            secret = settings.hs256_secret.encode()
            self._hs256 = Key.from_secret(secret, alg="HS256", kid="hs256")

    def load(self, *, now: float) -> None:
        """Load the keys; on first start (no key stored) create one that signs at once."""
        if self._settings.hs256:
            self._published = KeySet([self._hs256])
            return
        self.reload()
        if not self._records:
            self.rotate(now=now, publish_ahead=0)

    def reload(self) -> None:
        """Re-read the stored keys (a ``jotkit keys rotate`` may have run elsewhere)."""
        if self._settings.hs256:
            return
        records = [(record, self._decrypt(record)) for record in self._store.signing_keys()]
        published = KeySet([key.public() for _, key in records])
        jwks = orjson.dumps(published.to_jwks())
        with self._lock:
            self._records = records
            self._published = published
            self._jwks_json = jwks

    def signing_key(self, *, now: float) -> Key:
        """The key that signs at ``now``: the newest one already active."""
        if self._settings.hs256:
            return self._hs256
        with self._lock:
            active = [key for record, key in self._records if record.activates_at <= now]
        if not active:
            # Only reachable when every stored key activates in the future (a clock set back
            # past them): the service asks before it writes anything, so nothing is spent.
            raise ApiError("unavailable", "no signing key is active yet")
        return active[-1]

    @property
    def verification_keys(self) -> KeySet:
        """Every published key (public halves; the HS256 secret in HS256 mode)."""
        return self._published

    @property
    def jwks_json(self) -> bytes:
        """The JWKS document, serialized once per reload."""
        return self._jwks_json

    def records(self) -> list[KeyRecord]:
        """The stored key records (for ``jotkit keys list`` and tests)."""
        with self._lock:
            return [record for record, _ in self._records]

    def rotate(self, *, now: float, publish_ahead: float | None = None) -> KeyRecord | None:
        """Create the next key: published now, signing after ``publish_ahead`` seconds.

        None when another process stored a key since this keyring last read them: that key
        stands (this keyring reloads it), so two instances rotating at once add one key.
        """
        if self._settings.hs256:
            raise ConfigError("HS256 mode has one shared secret: rotate it in the environment")
        settings = self._settings
        ahead = settings.key_publish_ahead_seconds if publish_ahead is None else publish_ahead
        key = Key.generate(settings.algorithm)
        record = KeyRecord(
            kid=str(key.kid),
            alg=settings.algorithm,
            private_jwk=self._encrypt(str(key.kid), orjson.dumps(key.to_jwk(private=True))),
            public_jwk=orjson.dumps(key.public().to_jwk()).decode(),
            created_at=now,
            activates_at=now + ahead,
            retired_at=None,
            remove_after=None,
        )
        # Every key signing before this one retires when it activates; it stays published
        # until the last token it can have signed has expired.
        remove_after = (
            record.activates_at + settings.access_ttl_seconds + settings.clock_skew_seconds
        )
        with self._lock:
            seen = [r for r, _ in self._records]
        retire = [(r.kid, remove_after) for r in seen if r.retired_at is None]
        newest = seen[-1].kid if seen else None  # the store lists them by activation
        added = self._store.add_signing_key(record, retire=retire, after=newest)
        self.reload()
        return record if added else None

    def rotation_due(self, *, now: float) -> bool:
        """True when the automatic schedule wants a new key (none pending, newest too old)."""
        days = self._settings.key_rotation_days
        if self._settings.hs256 or days <= 0 or not self._records:
            return False
        newest = self._records[-1][0]
        return newest.activates_at <= now and now - newest.activates_at >= days * 86400

    def _encrypt(self, kid: str, private_jwk: bytes) -> str:
        if self._aead is None:
            return private_jwk.decode()
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, private_jwk, kid.encode())
        return _ENCRYPTED + b64encode(nonce + sealed)

    def _decrypt(self, record: KeyRecord) -> Key:
        stored = record.private_jwk
        if stored.startswith(_ENCRYPTED):
            if self._aead is None:
                raise ConfigError(
                    f"signing key {record.kid} is encrypted: set JOTKIT_MASTER_KEY to load it"
                )
            blob = b64decode(stored[len(_ENCRYPTED) :])
            try:
                stored = self._aead.decrypt(blob[:12], blob[12:], record.kid.encode()).decode()
            except Exception:
                raise ConfigError(
                    f"signing key {record.kid} does not decrypt: wrong JOTKIT_MASTER_KEY"
                ) from None
        return Key.from_jwk(orjson.loads(stored))


def _aead(master_key: str) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"jotkit signing keys v1"
    ).derive(master_key.encode())
    return AESGCM(derived)

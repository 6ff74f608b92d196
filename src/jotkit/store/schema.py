"""The store's tables (SQLAlchemy Core): one schema for SQLite and PostgreSQL.

Changes go through a new Alembic revision in ``store/migrations/versions``; this module is the
schema as of the newest revision, used by the store's queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "dpop_proofs",
    "families",
    "login_failures",
    "metadata",
    "refresh_tokens",
    "revocations",
    "server_secrets",
    "signing_keys",
    "users",
]

metadata = MetaData()

# Times are NumericDates (float seconds since the epoch), like the tokens they bound.
users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("scope", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    # Sign out everywhere: access tokens with iat < not_before are dead.
    Column("not_before", Float, nullable=False, default=0),
)

# A family is one login on one device: its id is the access tokens' sid.
families = Table(
    "families",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("revoked_reason", String(32), nullable=True),
    Column("user_agent", String(256), nullable=False, default=""),
    Column("client_address", String(64), nullable=False, default=""),
    # RFC 7638 thumbprint of the DPoP key the session is bound to (RFC 9449 §5); None: bearer.
    Column("dpop_jkt", String(64), nullable=True),
    Index("ix_families_user_id", "user_id"),
)

# Only the SHA-256 of a refresh token is kept: a copy of the table grants nothing.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(64), ForeignKey("families.id"), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("spent_at", Float, nullable=True),
    # Set with spent_at: the token that replaced this one, as its hash and sealed under a key
    # derived from this token (server/successors.py), for the reuse window.
    Column("successor_hash", String(64), nullable=True),
    Column("sealed_successor", LargeBinary, nullable=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(128), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_jwk", Text, nullable=False),  # JSON, or "aesgcm:" + ciphertext
    Column("public_jwk", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("activates_at", Float, nullable=False),  # starts signing; published from creation
    Column("retired_at", Float, nullable=True),  # a newer key took over signing
    Column("remove_after", Float, nullable=True),  # every token it signed has expired
)

# The durable revocation feed; the autoincrement id is the feed cursor.
revocations = Table(
    "revocations",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("value", String(128), nullable=False),
    Column("not_before", Float, nullable=False, default=0),
    Column("forget_after", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_revocations_forget_after", "forget_after"),
)

# Failed logins per throttling key ("account:<email>" / "address:<ip>") in a fixed window.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("window_started_at", Float, nullable=False),
    Column("failures", Integer, nullable=False),
)

# DPoP proofs accepted at the token endpoint and /me (RFC 9449 §11.1), as SHA-256 of
# "jkt:jti", kept until no clock could accept them again: every instance sees every proof.
dpop_proofs = Table(
    "dpop_proofs",
    metadata,
    Column("proof_hash", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Index("ix_dpop_proofs_expires_at", "expires_at"),
)

# Secrets every instance must share, created by the first that needs one (the DPoP nonce key).
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

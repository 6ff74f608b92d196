"""Persistence of the auth server: one schema (Alembic-versioned) on SQLite or PostgreSQL."""

from __future__ import annotations

from jotkit.store.store import (
    Conflict,
    Family,
    KeyRecord,
    Rotation,
    Store,
    StoreError,
    User,
)

__all__ = ["Conflict", "Family", "KeyRecord", "Rotation", "Store", "StoreError", "User"]

"""Persistence of the auth server: one schema (Alembic-versioned) on SQLite or PostgreSQL."""

from __future__ import annotations

from jotkit.store.engine import Conflict, StoreError
from jotkit.store.keys import KeyRecord
from jotkit.store.sessions import Family, Rotation
from jotkit.store.store import Store
from jotkit.store.users import User

__all__ = ["Conflict", "Family", "KeyRecord", "Rotation", "Store", "StoreError", "User"]

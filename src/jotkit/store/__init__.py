"""Persistence of the auth server: one schema (Alembic-versioned) on SQLite or PostgreSQL."""

from __future__ import annotations

from jotkit.extras import require_extra

require_extra("the jotkit store", "'jotkit[server]'", "sqlalchemy", "alembic")

# These imports need the extra checked above.
from jotkit.store.errors import Conflict, StoreError  # noqa: E402
from jotkit.store.keys import KeyRecord  # noqa: E402
from jotkit.store.sessions import Family, Presented, Rotation  # noqa: E402
from jotkit.store.store import Store  # noqa: E402
from jotkit.store.users import User  # noqa: E402

__all__ = [
    "Conflict",
    "Family",
    "KeyRecord",
    "Presented",
    "Rotation",
    "Store",
    "StoreError",
    "User",
]

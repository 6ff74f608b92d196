"""The reuse window: a spent refresh token remembers its successor (hash and sealed token).

Revision ID: 0002_refresh_successor
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_refresh_successor"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Two nullable columns: tokens spent before this revision have no successor recorded."""
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("successor_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sealed_successor", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("sealed_successor")
        batch.drop_column("successor_hash")

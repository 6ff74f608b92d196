"""DPoP (RFC 9449): a family's bound key, the proofs seen (replay), one shared server secret.

Revision ID: 0003_dpop
Revises: 0002_refresh_successor
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_dpop"
down_revision = "0002_refresh_successor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A nullable column (families created before this revision are bearer sessions) and two
    tables (a frozen copy of store/schema.py as of this revision)."""
    with op.batch_alter_table("families") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.String(64), nullable=True))
    op.create_table(
        "dpop_proofs",
        sa.Column("proof_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_dpop_proofs_expires_at", "dpop_proofs", ["expires_at"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("server_secrets")
    op.drop_index("ix_dpop_proofs_expires_at", table_name="dpop_proofs")
    op.drop_table("dpop_proofs")
    with op.batch_alter_table("families") as batch:
        batch.drop_column("dpop_jkt")

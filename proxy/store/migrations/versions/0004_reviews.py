"""Reviews: drafts sent to a superior before posting, sealed with a key outside the database.

Revision ID: 0004
Revises: 0003 (allowances)
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("account", sa.String(16), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary()),
        sa.Column("key_id", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("purge_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime()),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("comment", sa.Text()),
        sa.Column("allowance_id", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
    )
    op.create_index("ix_reviews_status_created", "reviews", ["status", "created_at"])
    op.create_index("ix_reviews_user_created", "reviews", ["user", "created_at"])
    op.create_index("ix_reviews_purge_at", "reviews", ["purge_at"])


def downgrade() -> None:
    op.drop_table("reviews")

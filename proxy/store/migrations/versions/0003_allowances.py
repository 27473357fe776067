"""Allowances: "let exactly this post through once" (issue 16).

An allowance binds a user, a platform and the hash of a post's text (never the text);
issued by ``POST /api/v1/proceed`` (kind ``proceed``) or a reviewer's approval (kind
``review``), carried to the gateways in the bundle, used once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "allowances",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("issued_by", sa.String(128), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime()),
        sa.Column("used_by", sa.String(128)),
        sa.PrimaryKeyConstraint("id", name="pk_allowances"),
    )
    op.create_index("ix_allowances_expires", "allowances", ["expires_at"])


def downgrade() -> None:
    op.drop_table("allowances")

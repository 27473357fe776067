"""Keyed audit chain and server-side sessions.

* ``audit_log.key_id``: the audit key an entry's HMAC link was made with. Entries already
  in the log keep their plain SHA-256 hashes (``key_id`` NULL): ``audit_head.legacy_through``
  records the last of them, and ``verify`` checks them the old way. The first entry written
  after the upgrade links to the last old one under the key, so the old part cannot be
  rewritten without the key either; an anchor written right after the upgrade
  (``sargs audit anchor``) pins the boundary outside the database.
* ``sessions``: service login sessions, ended at once by logout, password change, role
  change, removal or "log out everywhere".

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("key_id", sa.String(16)))
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("legacy_through", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    op.execute("UPDATE audit_head SET legacy_through = seq")
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("ended_at", sa.DateTime()),
        sa.Column("ended_by", sa.String(128)),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user", "sessions", ["user"])
    op.create_index("ix_sessions_expires", "sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("sessions")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("legacy_through")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("key_id")

"""The tables, as SQLAlchemy Core metadata (the migrations in ``migrations/`` create them).

Times are stored as naive UTC (``UTCDateTime``) so that SQLite and PostgreSQL hold and
return the same values; every time the store hands out is timezone-aware (UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes in, stored as naive UTC, aware (UTC) datetimes out."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store takes timezone-aware datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("display_name", sa.String(200)),
    sa.Column("department", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("platform", sa.String(64), nullable=False),
    sa.Column("access", sa.String(8), nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("justification", sa.Text, nullable=False),
    sa.Column("ticket", sa.String(100)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("reason", sa.Text),
    sa.Column("grant_id", sa.String(32)),
    sa.Index("ix_requests_status_created", "status", "created_at"),
    sa.Index("ix_requests_user_created", "user", "created_at"),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("request_id", sa.String(32), sa.ForeignKey("requests.id")),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("platform", sa.String(64), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("granted_by", sa.String(128), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("ended_by", sa.String(128)),
    sa.Column("reason", sa.Text),
    sa.Index("ix_grants_status_expires", "status", "expires_at"),
)

counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
"""One row per counter. ``changes``: the change sequence (bumped with every request or
grant change)."""

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("legacy_through", sa.BigInteger, nullable=False, server_default="0"),
)
"""A single row (id 1): the chain's last sequence number and hash. Appends lock it.
``legacy_through``: entries up to this seq were written before the chain was keyed."""

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(128)),
    sa.Column("user", sa.String(128)),
    sa.Column("platform", sa.String(64)),
    sa.Column("request_id", sa.String(32)),
    sa.Column("grant_id", sa.String(32)),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(16)),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_kind_at", "kind", "at"),
    sa.Index("ix_audit_log_user_at", "user", "at"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("audit_seq", sa.BigInteger, nullable=False),
    sa.Index("ix_events_received_at", "received_at"),
)
"""Gateway decision events already recorded, by their client-supplied id (idempotency)."""

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("agent", sa.String(200), nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("ended_by", sa.String(128)),
    sa.Index("ix_sessions_user", "user"),
    sa.Index("ix_sessions_expires", "expires_at"),
)
"""Service login sessions. ``id`` is SHA-256 of the cookie's secret (a database reader
cannot sign in with it); a session is valid while not ended and not expired."""

allowances = sa.Table(
    "allowances",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("platform", sa.String(64), nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("issued_by", sa.String(128), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Column("used_by", sa.String(128)),
    sa.Index("ix_allowances_expires", "expires_at"),
)
"""Permissions to post exactly one text once (``allowances.py``): bound to the user, the
platform and the text's hash (``proxy.compliance.texthash``), never the text."""

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("platform", sa.String(64), nullable=False),
    sa.Column("account", sa.String(16), nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("sealed", sa.LargeBinary),
    sa.Column("key_id", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("purge_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("comment", sa.Text),
    sa.Column("allowance_id", sa.String(32)),
    sa.Index("ix_reviews_status_created", "status", "created_at"),
    sa.Index("ix_reviews_user_created", "user", "created_at"),
    sa.Index("ix_reviews_purge_at", "purge_at"),
)
"""Drafts sent for review (``reviews.py``). ``sealed``: AES-GCM of the draft and the
author's note under the review key (``reviewkey.py``, outside the database), NULL once the
review is decided or its retention ends; ``purge_at``: when the row goes altogether."""

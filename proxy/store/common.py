"""Small helpers shared by the store modules."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from proxy.store.errors import InvalidInput
from proxy.store.schema import counters


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None, field: str = "now") -> datetime:
    """``value`` (default: now), which must carry a time zone."""
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        raise InvalidInput(field, "needs a time zone")
    return value


def new_id() -> str:
    """A short random id (12 URL-safe characters, 72 bits)."""
    return secrets.token_urlsafe(9)


def bump_changes(conn: Connection) -> int:
    """Raise the change sequence by one inside the caller's transaction; return it.

    The UPDATE locks the counter row until commit (PostgreSQL; SQLite holds the database
    lock), so values are handed out in commit order and never twice.
    """
    conn.execute(sa.update(counters).where(counters.c.name == "changes")
                 .values(value=counters.c.value + 1))
    value = conn.execute(sa.select(counters.c.value)
                         .where(counters.c.name == "changes")).scalar_one()
    return int(value)


def text_field(value: str | None, field: str, *, max_len: int, required: bool = True
               ) -> str | None:
    """Stripped text, or ``None`` when empty and not required."""
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if len(text) > max_len:
        raise InvalidInput(field, f"is longer than {max_len} characters")
    return text

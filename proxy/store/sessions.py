"""Service login sessions, kept in the database so that they can be ended at once.

A session's cookie holds a random secret; the table holds only its SHA-256 (``id``), so a
copy of the database signs nobody in. A session is valid while it is neither ended nor
expired. Logout ends one; ``end_all`` ends a user's sessions (log out everywhere, and in
``users.py`` with every password change, role change and removal, in the same
transaction). Every service node reads the same table, so an ended session is refused by
every node on its next request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from proxy.store.common import aware
from proxy.store.db import Store
from proxy.store.schema import sessions

SEEN_RESOLUTION = timedelta(minutes=5)
"""``seen_at`` is written at most this often per session (a page view is not a write)."""


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime
    address: str
    agent: str
    ended_at: datetime | None


def session_id(token: str) -> str:
    """The id a session is stored under: SHA-256 of its cookie's secret."""
    return hashlib.sha256(token.encode()).hexdigest()


def _session(row: Row[object]) -> Session:
    m = row._mapping
    return Session(id=m["id"], user=m["user"], created_at=m["created_at"],
                   seen_at=m["seen_at"], expires_at=m["expires_at"], address=m["address"],
                   agent=m["agent"], ended_at=m["ended_at"])


def start(store: Store, user: str, lifetime: timedelta, *, address: str = "",
          agent: str = "", now: datetime | None = None) -> tuple[str, Session]:
    """A new session: (the cookie's secret, the session)."""
    now = aware(now)
    token = secrets.token_urlsafe(32)
    row = {"id": session_id(token), "user": user, "created_at": now, "seen_at": now,
           "expires_at": now + lifetime, "address": address[:64], "agent": agent[:200]}
    with store.write() as conn:
        conn.execute(sa.delete(sessions).where(sessions.c.expires_at < now))
        conn.execute(sa.insert(sessions).values(**row))
    return token, Session(**row, ended_at=None)  # type: ignore[arg-type]


def find(store: Store, token: str, now: datetime | None = None) -> Session | None:
    """The live session the cookie's secret belongs to, or ``None``."""
    now = aware(now)
    with store.read() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.id == session_id(token))).first()
    if row is None:
        return None
    found = _session(row)
    if found.ended_at is not None or found.expires_at <= now:
        return None
    if now - found.seen_at >= SEEN_RESOLUTION:
        with store.write() as conn:
            conn.execute(sa.update(sessions).where(sessions.c.id == found.id)
                         .values(seen_at=now))
    return found


def end(store: Store, session_id: str, *, by: str | None = None,
        now: datetime | None = None) -> bool:
    """End one session (by its id); whether it was live."""
    with store.write() as conn:
        result = conn.execute(sa.update(sessions)
                              .where(sessions.c.id == session_id, sessions.c.ended_at.is_(None))
                              .values(ended_at=aware(now), ended_by=by))
    return bool(result.rowcount)


def end_all_in(conn: Connection, user: str, *, by: str | None, now: datetime,
               keep: str | None = None) -> int:
    """End every live session of ``user`` (but ``keep``) inside the caller's transaction."""
    query = sa.update(sessions).where(sessions.c.user == user, sessions.c.ended_at.is_(None))
    if keep is not None:
        query = query.where(sessions.c.id != keep)
    return int(conn.execute(query.values(ended_at=now, ended_by=by)).rowcount)


def end_all(store: Store, user: str, *, by: str | None = None, keep: str | None = None,
            now: datetime | None = None) -> int:
    """End every live session of ``user`` (but ``keep``); how many were ended."""
    with store.write() as conn:
        return end_all_in(conn, user, by=by, now=aware(now), keep=keep)


def list_live(store: Store, user: str, now: datetime | None = None) -> list[Session]:
    """The user's live sessions, newest first."""
    now = aware(now)
    with store.read() as conn:
        rows = conn.execute(sa.select(sessions)
                            .where(sessions.c.user == user, sessions.c.ended_at.is_(None),
                                   sessions.c.expires_at > now)
                            .order_by(sessions.c.created_at.desc())).all()
    return [_session(r) for r in rows]

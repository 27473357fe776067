"""Time-limited grants (temporary access) and the change sequence.

A grant is created by approving a request (``requests.approve``); it is ``active`` until
``expires_at``, then ``expired`` (``expire_due`` marks it), or ``revoked`` earlier. The
gateways need only the active ones: ``snapshot(now)`` gives them with the change sequence
read in the same transaction, which is what a bundle ("version N") is built from.

The **change sequence** is bumped in the same transaction as every request or grant
change, so a service node learns of changes made on other nodes by polling
``current_sequence()`` (one primary-key read).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from proxy.policy.decide import Grant as PolicyGrant
from proxy.policy.model import Action
from proxy.store import audit
from proxy.store.allowances import Allowance, active_in
from proxy.store.common import aware, bump_changes, text_field
from proxy.store.db import Store
from proxy.store.errors import AlreadyDecided, NotFound
from proxy.store.schema import counters, grants, requests

ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    user: str
    platform: str
    action: str
    """``read`` or ``allow``."""
    granted_by: str
    starts_at: datetime
    expires_at: datetime
    status: str
    """``active``, ``expired`` or ``revoked``."""
    request_id: str | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    reason: str | None = None

    def is_active(self, now: datetime) -> bool:
        return self.status == ACTIVE and self.starts_at <= now < self.expires_at

    def to_policy_grant(self) -> PolicyGrant:
        """What ``AccessPolicy.decide`` takes."""
        return PolicyGrant(id=self.id, user=self.user, platform=self.platform,
                           action=Action(self.action), expires_at=self.expires_at)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Active grants (and allowances) as of one change sequence."""

    sequence: int
    grants: list[Grant]
    allowances: list[Allowance] = field(default_factory=list)
    """Unused, unexpired permissions to post one text once (``allowances.py``)."""


def grant_from_row(row: Row[Any]) -> Grant:
    m = row._mapping
    return Grant(id=m["id"], user=m["user"], platform=m["platform"], action=m["action"],
                 granted_by=m["granted_by"], starts_at=m["starts_at"],
                 expires_at=m["expires_at"], status=m["status"], request_id=m["request_id"],
                 ended_at=m["ended_at"], ended_by=m["ended_by"], reason=m["reason"])


def _active(conn: Connection, now: datetime, user: str | None = None) -> list[Grant]:
    stmt = (sa.select(grants)
            .where(grants.c.status == ACTIVE, grants.c.expires_at > now,
                   grants.c.starts_at <= now)
            .order_by(grants.c.expires_at, grants.c.id))
    if user is not None:
        stmt = stmt.where(grants.c.user == user)
    return [grant_from_row(r) for r in conn.execute(stmt)]


def current_sequence(store: Store) -> int:
    """The change sequence: bumped by every request and grant change, on any node."""
    with store.read() as conn:
        return _sequence(conn)


def _sequence(conn: Connection) -> int:
    return int(conn.execute(sa.select(counters.c.value)
                            .where(counters.c.name == "changes")).scalar_one())


def list_active(store: Store, now: datetime | None = None, *, user: str | None = None
                ) -> list[Grant]:
    """Grants in force at ``now`` (including ones past expiry not yet marked by
    ``expire_due``: those are left out, so enforcement never outlives ``expires_at``)."""
    with store.read() as conn:
        return _active(conn, aware(now), user)


def snapshot(store: Store, now: datetime | None = None) -> Snapshot:
    """The change sequence, the active grants and allowances, read in one transaction."""
    now = aware(now)
    with store.read() as conn:
        return Snapshot(_sequence(conn), _active(conn, now), active_in(conn, now))


def get_grant(store: Store, grant_id: str) -> Grant | None:
    with store.read() as conn:
        row = conn.execute(sa.select(grants).where(grants.c.id == grant_id)).first()
    return grant_from_row(row) if row is not None else None


def list_grants(store: Store, *, user: str | None = None, status: str | None = None,
                limit: int = 100, offset: int = 0) -> list[Grant]:
    """Grants newest first, optionally of one user or one status."""
    stmt = sa.select(grants).order_by(grants.c.starts_at.desc(), grants.c.id)
    if user is not None:
        stmt = stmt.where(grants.c.user == user)
    if status is not None:
        stmt = stmt.where(grants.c.status == status)
    with store.read() as conn:
        return [grant_from_row(r) for r in conn.execute(stmt.limit(limit).offset(offset))]


def revoke(store: Store, grant_id: str, by: str, reason: str | None = None, *,
           now: datetime | None = None) -> Grant:
    """End an active grant now. ``NotFound``; ``AlreadyDecided`` if no longer active.

    Its request (if any) becomes ``revoked``; the change sequence is bumped and a
    ``revoke`` audit entry written, all in one transaction.
    """
    now = aware(now)
    why = text_field(reason, "reason", max_len=2000, required=False)
    with store.write() as conn:
        result = conn.execute(sa.update(grants)
                              .where(grants.c.id == grant_id, grants.c.status == ACTIVE)
                              .values(status=REVOKED, ended_at=now, ended_by=by, reason=why))
        row = conn.execute(sa.select(grants).where(grants.c.id == grant_id)).first()
        if row is None:
            raise NotFound(f"no grant {grant_id!r}")
        if result.rowcount != 1:
            raise AlreadyDecided(f"grant {grant_id}", row.status)
        grant = grant_from_row(row)
        if grant.request_id is not None:
            conn.execute(sa.update(requests).where(requests.c.id == grant.request_id)
                         .values(status="revoked"))
        sequence = bump_changes(conn)
        audit.append_in(conn, audit.Kind.revoke, at=now, actor=by, user=grant.user,
                        platform=grant.platform, request_id=grant.request_id,
                        grant_id=grant.id,
                        details={"reason": why, "expires_at": grant.expires_at.isoformat(),
                                 "sequence": sequence})
    return grant


def expire_due(store: Store, now: datetime | None = None) -> list[Grant]:
    """Mark active grants whose time is up as ``expired`` (their requests too) and return
    them. Each gets an ``expire`` audit entry in the same transaction; the change sequence
    is bumped once if any expired. Run it every few seconds on any node (idempotent).
    """
    now = aware(now)
    with store.write() as conn:
        due = [grant_from_row(r) for r in conn.execute(
            sa.select(grants).where(grants.c.status == ACTIVE, grants.c.expires_at <= now)
            .order_by(grants.c.expires_at, grants.c.id).with_for_update())]
        if not due:
            return []
        ids = [g.id for g in due]
        conn.execute(sa.update(grants).where(grants.c.id.in_(ids), grants.c.status == ACTIVE)
                     .values(status=EXPIRED, ended_at=grants.c.expires_at))
        request_ids = [g.request_id for g in due if g.request_id is not None]
        if request_ids:
            conn.execute(sa.update(requests).where(requests.c.id.in_(request_ids),
                                                   requests.c.status == "approved")
                         .values(status="expired"))
        sequence = bump_changes(conn)
        for g in due:
            audit.append_in(conn, audit.Kind.expire, at=now, actor=None, user=g.user,
                            platform=g.platform, request_id=g.request_id, grant_id=g.id,
                            details={"expires_at": g.expires_at.isoformat(),
                                     "sequence": sequence})
    return [replace(g, status=EXPIRED, ended_at=g.expires_at) for g in due]

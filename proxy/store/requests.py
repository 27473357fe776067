"""Access-exception requests: a blocked user asks for temporary access; an approver decides.

Life of a request (``status``)::

    pending ──approve──▶ approved ──(grant ends)──▶ expired | revoked
       │ └────reject───▶ rejected
       └──(too old)────▶ lapsed

Rules the store enforces (whatever the caller): a request is decided once (a conditional
``UPDATE … WHERE status = 'pending'``, so two approvers acting at the same moment on two
nodes cannot both win: the loser gets ``AlreadyDecided``), and nobody decides their own
request (``SelfDecision``). How long a grant may last and who may approve what is policy:
the service checks those before calling ``approve``.

Every change bumps the change sequence and writes its audit entry in the same
transaction; the caller need not audit again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from proxy.store import audit
from proxy.store.common import aware, bump_changes, new_id, text_field
from proxy.store.db import Store
from proxy.store.errors import (
    AlreadyDecided,
    InvalidInput,
    NotFound,
    SelfDecision,
    TooManyPending,
)
from proxy.store.grants import ACTIVE, Grant
from proxy.store.schema import grants, requests

STATUSES = ("pending", "approved", "rejected", "expired", "revoked", "lapsed")
ACCESS = ("read", "allow")
MAX_MINUTES = 90 * 24 * 60
"""Absolute cap on any duration (the policy's own caps are lower)."""


@dataclass(frozen=True, slots=True)
class AccessRequest:
    id: str
    user: str
    platform: str
    access: str
    """``read`` or ``allow``."""
    duration_minutes: int
    """Asked for; the grant's duration may be shorter (set by the approver)."""
    justification: str
    ticket: str | None
    status: str
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    """The approver's reason for a rejection."""
    grant_id: str | None = None


def _request(row: Row[Any]) -> AccessRequest:
    m = row._mapping
    return AccessRequest(id=m["id"], user=m["user"], platform=m["platform"],
                         access=m["access"], duration_minutes=m["duration_minutes"],
                         justification=m["justification"], ticket=m["ticket"],
                         status=m["status"], created_at=m["created_at"],
                         decided_at=m["decided_at"], decided_by=m["decided_by"],
                         reason=m["reason"], grant_id=m["grant_id"])


def _minutes(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MINUTES:
        raise InvalidInput(field, f"must be a whole number of minutes, 1–{MAX_MINUTES}")
    return value


def create_request(store: Store, user: str, platform: str, access: str,
                   duration_minutes: int, justification: str, ticket: str | None = None, *,
                   now: datetime | None = None, max_pending: int | None = None
                   ) -> AccessRequest:
    """``submit_request`` without saying whether the request is new."""
    return submit_request(store, user, platform, access, duration_minutes, justification,
                          ticket, now=now, max_pending=max_pending)[0]


def submit_request(store: Store, user: str, platform: str, access: str,
                   duration_minutes: int, justification: str, ticket: str | None = None, *,
                   now: datetime | None = None, max_pending: int | None = None
                   ) -> tuple[AccessRequest, bool]:
    """Store a pending request and return it once committed, and whether it is new.

    Bounded per user when ``max_pending`` is given (the service always gives
    ``Settings.max_pending_requests``): while the user has a pending request for
    ``platform``, asking again updates that one (access, duration, justification, ticket;
    same id, so approvers are told once); with ``max_pending`` pending requests for other
    platforms already, a new one is refused (``TooManyPending``). Requests of one user are
    serialized (SQLite's write lock; a PostgreSQL advisory lock per user), so a burst
    cannot slip past the cap.
    """
    if access not in ACCESS:
        raise InvalidInput("access", "must be read or allow")
    request = AccessRequest(
        id=new_id(),
        user=text_field(user, "user", max_len=128) or "",
        platform=text_field(platform, "platform", max_len=64) or "",
        access=access,
        duration_minutes=_minutes(duration_minutes, "duration_minutes"),
        justification=text_field(justification, "justification", max_len=2000) or "",
        ticket=text_field(ticket, "ticket", max_len=100, required=False),
        status="pending",
        created_at=aware(now),
    )
    with store.write() as conn:
        if conn.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(b"request:" + user.encode()).digest()[:8],
                                 "big", signed=True)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        pending = conn.execute(sa.select(requests).where(
            requests.c.user == request.user, requests.c.status == "pending")
            .order_by(requests.c.created_at)).all()
        same = next((r for r in pending if r.platform == request.platform), None) \
            if max_pending is not None else None
        values: dict[str, Any] = {
            "access": request.access, "duration_minutes": request.duration_minutes,
            "justification": request.justification, "ticket": request.ticket}
        if same is not None:
            conn.execute(sa.update(requests).where(requests.c.id == same.id).values(**values))
            bump_changes(conn)
            audit.append_in(conn, audit.Kind.request, at=request.created_at,
                            actor=request.user, user=request.user, platform=request.platform,
                            request_id=same.id,
                            details={"access": access, "duration_minutes": duration_minutes,
                                     "ticket": request.ticket, "updated": True})
            return replace(_request(same), access=request.access,
                           duration_minutes=request.duration_minutes,
                           justification=request.justification, ticket=request.ticket), False
        if max_pending is not None and len(pending) >= max_pending:
            raise TooManyPending(max_pending)
        conn.execute(sa.insert(requests).values(
            id=request.id, user=request.user, platform=request.platform,
            status=request.status, created_at=request.created_at, **values))
        bump_changes(conn)
        # The justification stays in the request row, out of the audit log.
        audit.append_in(conn, audit.Kind.request, at=request.created_at, actor=request.user,
                        user=request.user, platform=request.platform, request_id=request.id,
                        details={"access": access, "duration_minutes": duration_minutes,
                                 "ticket": request.ticket})
    return request, True


def get_request(store: Store, request_id: str) -> AccessRequest | None:
    with store.read() as conn:
        row = conn.execute(sa.select(requests).where(requests.c.id == request_id)).first()
    return _request(row) if row is not None else None


def list_requests(store: Store, *, user: str | None = None,
                  status: str | list[str] | None = None, platform: str | None = None,
                  limit: int = 100, offset: int = 0,
                  oldest_first: bool = False) -> list[AccessRequest]:
    """Requests, newest first (a queue of pending ones: ``oldest_first=True``)."""
    order = requests.c.created_at.asc() if oldest_first else requests.c.created_at.desc()
    stmt = sa.select(requests).order_by(order, requests.c.id)
    if user is not None:
        stmt = stmt.where(requests.c.user == user)
    if status is not None:
        stmt = stmt.where(requests.c.status.in_([status] if isinstance(status, str) else status))
    if platform is not None:
        stmt = stmt.where(requests.c.platform == platform)
    with store.read() as conn:
        return [_request(r) for r in conn.execute(stmt.limit(limit).offset(offset))]


def count_requests(store: Store, *, status: str | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(requests)
    if status is not None:
        stmt = stmt.where(requests.c.status == status)
    with store.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def _decide(conn: sa.Connection, request_id: str, approver: str, values: dict[str, Any]
            ) -> AccessRequest:
    row = conn.execute(sa.select(requests).where(requests.c.id == request_id)).first()
    if row is None:
        raise NotFound(f"no request {request_id!r}")
    if row.user == approver:
        raise SelfDecision("nobody decides their own request")
    result = conn.execute(sa.update(requests)
                          .where(requests.c.id == request_id, requests.c.status == "pending")
                          .values(**values))
    if result.rowcount != 1:
        status = conn.execute(sa.select(requests.c.status)
                              .where(requests.c.id == request_id)).scalar_one()
        raise AlreadyDecided(f"request {request_id}", status)
    return _request(conn.execute(sa.select(requests)
                                 .where(requests.c.id == request_id)).one())


def approve(store: Store, request_id: str, approver: str, *,
            duration_minutes: int | None = None, now: datetime | None = None
            ) -> tuple[AccessRequest, Grant]:
    """Approve a pending request: a grant starts now and lasts ``duration_minutes``
    (default: what was asked). ``NotFound``, ``SelfDecision``, ``AlreadyDecided``.
    """
    now = aware(now)
    approver = text_field(approver, "approver", max_len=128) or ""
    grant_id = new_id()
    with store.write() as conn:
        request = _decide(conn, request_id, approver, {
            "status": "approved", "decided_at": now, "decided_by": approver,
            "grant_id": grant_id})
        minutes = _minutes(duration_minutes if duration_minutes is not None
                           else request.duration_minutes, "duration_minutes")
        grant = Grant(id=grant_id, user=request.user, platform=request.platform,
                      action=request.access, granted_by=approver, starts_at=now,
                      expires_at=now + timedelta(minutes=minutes), status=ACTIVE,
                      request_id=request.id)
        conn.execute(sa.insert(grants).values(
            id=grant.id, request_id=grant.request_id, user=grant.user,
            platform=grant.platform, action=grant.action, granted_by=grant.granted_by,
            starts_at=grant.starts_at, expires_at=grant.expires_at, status=grant.status))
        sequence = bump_changes(conn)
        audit.append_in(conn, audit.Kind.approve, at=now, actor=approver, user=request.user,
                        platform=request.platform, request_id=request.id, grant_id=grant.id,
                        details={"access": request.access, "duration_minutes": minutes,
                                 "expires_at": grant.expires_at.isoformat(),
                                 "sequence": sequence})
    return request, grant


def reject(store: Store, request_id: str, approver: str, reason: str, *,
           now: datetime | None = None) -> AccessRequest:
    """Reject a pending request with a reason (shown to the requester)."""
    now = aware(now)
    approver = text_field(approver, "approver", max_len=128) or ""
    why = text_field(reason, "reason", max_len=2000) or ""
    with store.write() as conn:
        request = _decide(conn, request_id, approver, {
            "status": "rejected", "decided_at": now, "decided_by": approver, "reason": why})
        bump_changes(conn)
        audit.append_in(conn, audit.Kind.reject, at=now, actor=approver, user=request.user,
                        platform=request.platform, request_id=request.id,
                        details={"reason": why})
    return request


def lapse_pending(store: Store, older_than: timedelta, *, now: datetime | None = None
                  ) -> list[AccessRequest]:
    """Mark pending requests created more than ``older_than`` ago as ``lapsed``; return
    them (each audited as ``lapse``)."""
    now = aware(now)
    cutoff = now - older_than
    with store.write() as conn:
        due = [_request(r) for r in conn.execute(
            sa.select(requests).where(requests.c.status == "pending",
                                      requests.c.created_at < cutoff)
            .order_by(requests.c.created_at).with_for_update())]
        if not due:
            return []
        conn.execute(sa.update(requests)
                     .where(requests.c.id.in_([r.id for r in due]),
                            requests.c.status == "pending")
                     .values(status="lapsed", decided_at=now))
        bump_changes(conn)
        for r in due:
            audit.append_in(conn, audit.Kind.lapse, at=now, user=r.user, platform=r.platform,
                            request_id=r.id, details={"created_at": r.created_at.isoformat()})
    return [replace(r, status="lapsed", decided_at=now) for r in due]

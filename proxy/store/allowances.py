"""Allowances: let exactly this post through, once (issue 16).

An allowance binds a user, a platform and the hash of a post's text
(``proxy.compliance.texthash.text_hash``; never the text) for a few minutes. It is issued
when a user proceeds with a reason (kind ``proceed``, ``POST /api/v1/proceed``) or when a
reviewer approves a draft (kind ``review``, ``proxy/store/reviews.py``), travels to every
gateway in the bundle and change stream like a grant, and is used once: the gateway that
lets the post through marks it used at once in memory and reports it; ``use`` then marks
it here, so the other gateways drop it with the next change.

``issue`` writes the audit entry in the same transaction: ``post-override`` for kind
``proceed``, ``review-approve`` for kind ``review`` (callers add ``details`` such as the
way and reason, or the review id; never the text). ``use`` writes ``allowance-use``.
Both bump the change sequence, which is how gateways learn of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from proxy.store import audit
from proxy.store.common import aware, bump_changes, new_id
from proxy.store.db import Store
from proxy.store.errors import InvalidInput
from proxy.store.schema import allowances

KINDS = ("proceed", "review")
MAX_MINUTES = 24 * 60
"""The longest an allowance may live (a review's approval may wait for the author)."""

_HASH = re.compile(r"[0-9a-f]{64}")
_AUDIT_KIND = {"proceed": audit.Kind.post_override, "review": audit.Kind.review_approve}


@dataclass(frozen=True, slots=True)
class Allowance:
    id: str
    user: str
    platform: str
    text_hash: str
    kind: str
    """``proceed`` or ``review``."""
    rules: tuple[str, ...]
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = None
    """The gateway that let the post through."""

    def is_active(self, now: datetime) -> bool:
        return self.used_at is None and self.issued_at <= now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """The shape in the bundle and the change stream (``from_json`` reads it)."""
        return {"id": self.id, "user": self.user, "platform": self.platform,
                "text_hash": self.text_hash, "kind": self.kind, "rules": list(self.rules),
                "issued_by": self.issued_by, "issued_at": self.issued_at.isoformat(),
                "expires_at": self.expires_at.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Allowance:
        """Read the bundle's shape; ``ValueError``/``KeyError``/``TypeError`` if malformed."""
        text_hash = str(data["text_hash"])
        if not _HASH.fullmatch(text_hash):
            raise ValueError("text_hash is not a hex SHA-256")
        kind = str(data["kind"])
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r}")
        rules = data.get("rules", [])
        if not isinstance(rules, list):
            raise TypeError("rules is not a list")
        issued, expires = (datetime.fromisoformat(str(data[k]))
                           for k in ("issued_at", "expires_at"))
        if issued.tzinfo is None or expires.tzinfo is None:
            raise ValueError("times need a time zone")
        return cls(id=str(data["id"]), user=str(data["user"]),
                   platform=str(data["platform"]), text_hash=text_hash, kind=kind,
                   rules=tuple(str(r) for r in rules), issued_by=str(data["issued_by"]),
                   issued_at=issued, expires_at=expires)


def _from_row(row: Row[Any]) -> Allowance:
    m = row._mapping
    return Allowance(id=m["id"], user=m["user"], platform=m["platform"],
                     text_hash=m["text_hash"], kind=m["kind"],
                     rules=tuple(m["rules"] or ()), issued_by=m["issued_by"],
                     issued_at=m["issued_at"], expires_at=m["expires_at"],
                     used_at=m["used_at"], used_by=m["used_by"])


def issue(store: Store, *, user: str, platform: str, text_hash: str, kind: str,
          rules: Sequence[str], minutes: int, actor: str,
          details: Mapping[str, Any] | None = None, now: datetime | None = None
          ) -> Allowance:
    """Issue an allowance and record it (``post-override`` or ``review-approve``, with
    ``details`` plus the rules, the text hash, the allowance id and its expiry), bumping
    the change sequence, all in one transaction. ``InvalidInput`` names a bad field."""
    now = aware(now)
    if not user or len(user) > 128:
        raise InvalidInput("user", "is required (at most 128 characters)")
    if not platform or len(platform) > 64:
        raise InvalidInput("platform", "is required (at most 64 characters)")
    if not _HASH.fullmatch(text_hash):
        raise InvalidInput("text_hash", "must be a hex SHA-256 (proxy.compliance.texthash)")
    if kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}")
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidInput("minutes", f"must be between 1 and {MAX_MINUTES}")
    made = Allowance(id=new_id(), user=user, platform=platform, text_hash=text_hash,
                     kind=kind, rules=tuple(sorted(set(rules))), issued_by=actor,
                     issued_at=now, expires_at=now + timedelta(minutes=minutes))
    with store.write() as conn:
        conn.execute(sa.insert(allowances).values(
            id=made.id, user=made.user, platform=made.platform, text_hash=made.text_hash,
            kind=made.kind, rules=list(made.rules), issued_by=made.issued_by,
            issued_at=made.issued_at, expires_at=made.expires_at))
        sequence = bump_changes(conn)
        audit.append_in(conn, _AUDIT_KIND[kind], at=now, actor=actor, user=user,
                        platform=platform,
                        details={**(details or {}), "rules": list(made.rules),
                                 "text_hash": text_hash, "allowance": made.id,
                                 "expires_at": made.expires_at.isoformat(),
                                 "sequence": sequence})
    return made


def _active(conn: Connection, now: datetime) -> list[Allowance]:
    stmt = (sa.select(allowances)
            .where(allowances.c.used_at.is_(None), allowances.c.expires_at > now,
                   allowances.c.issued_at <= now)
            .order_by(allowances.c.expires_at, allowances.c.id))
    return [_from_row(r) for r in conn.execute(stmt)]


def active(store: Store, now: datetime | None = None) -> list[Allowance]:
    """Allowances not used and not expired at ``now``: what gateways hold."""
    with store.read() as conn:
        return _active(conn, aware(now))


def active_in(conn: Connection, now: datetime | None = None) -> list[Allowance]:
    """``active`` inside the caller's transaction (a bundle reads them with its grants)."""
    return _active(conn, aware(now))


def get(store: Store, allowance_id: str) -> Allowance | None:
    with store.read() as conn:
        row = conn.execute(sa.select(allowances)
                           .where(allowances.c.id == allowance_id)).first()
    return _from_row(row) if row is not None else None


def mark_used_in(conn: Connection, allowance_id: str, by_gateway: str, at: datetime,
                 user: str | None = None) -> Allowance | None:
    """Mark an allowance used inside the caller's writing transaction; the allowance if
    this call did (it was active at ``at`` and, when ``user`` is given, that user's), else
    ``None``. The caller records it and bumps the change sequence."""
    cond = [allowances.c.id == allowance_id, allowances.c.used_at.is_(None),
            allowances.c.expires_at > at]
    if user is not None:
        cond.append(allowances.c.user == user)
    done = conn.execute(sa.update(allowances).where(*cond)
                        .values(used_at=at, used_by=by_gateway[:128])).rowcount
    if done != 1:
        return None
    row = conn.execute(sa.select(allowances).where(allowances.c.id == allowance_id)).one()
    return _from_row(row)


def use(store: Store, allowance_id: str, by_gateway: str, *, now: datetime | None = None,
        user: str | None = None) -> bool:
    """Mark an allowance used; ``True`` if this call did (it was active), ``False`` if it
    was unknown, already used or expired. Records ``allowance-use`` and bumps the change
    sequence when it did. ``user``, when given, must be the allowance's user.

    Gateways report a use as an ``allowance-use`` event (``POST /api/v1/events``), which
    ``events.record_events`` records with ``mark_used_in`` in the same way."""
    now = aware(now)
    with store.write() as conn:
        got = mark_used_in(conn, allowance_id, by_gateway, now, user)
        if got is None:
            return False
        sequence = bump_changes(conn)
        audit.append_in(conn, audit.Kind.allowance_use, at=now, actor=by_gateway[:128],
                        user=got.user, platform=got.platform,
                        details={"allowance": got.id, "kind": got.kind,
                                 "rules": list(got.rules), "text_hash": got.text_hash,
                                 "sequence": sequence})
    return True


def purge(store: Store, before: datetime) -> int:
    """Delete allowances that expired before ``before`` (housekeeping); how many."""
    with store.write() as conn:
        return int(conn.execute(sa.delete(allowances)
                                .where(allowances.c.expires_at < aware(before, "before")))
                   .rowcount)

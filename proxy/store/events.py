"""Gateway decision events, recorded exactly once.

A gateway spools its events (blocks, warnings…) on disk and delivers them in batches,
retrying until the service acknowledges. Each event carries an id the gateway chose
(a UUID); the store remembers ids it has recorded, so a batch delivered twice (the
acknowledgement got lost) is recorded once. Every new event becomes one audit entry. An
``allowance-use`` event also marks its allowance used (``allowances.mark_used_in``), so
the other gateways drop it with the next change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from proxy.store import audit
from proxy.store.allowances import mark_used_in
from proxy.store.common import aware, bump_changes, text_field, utcnow
from proxy.store.db import Store
from proxy.store.schema import events


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    """Client-chosen, unique (1–64 characters)."""
    kind: str
    """An audit kind: ``block``, ``warn``, ``policy-reload``…"""
    at: datetime
    """When it happened at the gateway."""
    user: str | None = None
    platform: str | None = None
    actor: str | None = None
    """Who reports it (the gateway's name)."""
    details: Mapping[str, Any] = field(default_factory=dict)


def record_events(store: Store, batch: Iterable[Event]) -> int:
    """Record a batch in one transaction; return how many were new (the rest were
    recorded before, or repeat an id within the batch, and are skipped). All or nothing:
    a bad event refuses the batch."""
    items = list(batch)
    for e in items:
        text_field(e.id, "id", max_len=64)
        audit.Kind(e.kind)
        aware(e.at, "at")
    if not items:
        return 0
    received = utcnow()
    with store.write() as conn:
        # Every recording holds the chain-head lock, so no other one can slip in between
        # this check and the insert below.
        audit.lock_head(conn)
        ids = list(dict.fromkeys(e.id for e in items))
        seen: set[str] = set()
        for k in range(0, len(ids), 500):
            seen.update(conn.execute(sa.select(events.c.event_id)
                                     .where(events.c.event_id.in_(ids[k:k + 500]))).scalars())
        new: list[Event] = []
        for e in items:
            if e.id not in seen:
                seen.add(e.id)
                new.append(e)
        entries = audit.append_many_in(conn, [
            audit.Draft(e.kind, e.at, e.actor, e.user, e.platform,
                        details={**e.details, "event_id": e.id}) for e in new])
        used = [e for e in new if e.kind == audit.Kind.allowance_use.value]
        marked = [mark_used_in(conn, str(e.details.get("allowance", "")), e.actor or "gateway",
                               aware(e.at, "at"), e.user) for e in used]
        if any(m is not None for m in marked):
            bump_changes(conn)  # the other gateways drop the allowance with the next bundle
        if new:
            conn.execute(sa.insert(events), [
                {"event_id": e.id, "received_at": received, "audit_seq": entry.seq}
                for e, entry in zip(new, entries, strict=True)])
    return len(new)


def record_event(store: Store, event: Event) -> bool:
    """Record one event; ``False`` if it was recorded before."""
    return record_events(store, [event]) == 1

"""Gateway decision events, recorded exactly once.

A gateway spools its events (blocks, warnings…) on disk and delivers them in batches,
retrying until the service acknowledges. Each event carries an id the gateway chose
(a UUID); the store remembers ids it has recorded, so a batch delivered twice (the
acknowledgement got lost) is recorded once. Every new event becomes one audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from proxy.store import audit
from proxy.store.common import aware, text_field, utcnow
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
    recorded before and are skipped). All or nothing: a bad event refuses the batch."""
    items = list(batch)
    for e in items:
        text_field(e.id, "id", max_len=64)
        audit.Kind(e.kind)
        aware(e.at, "at")
    received = utcnow()
    insert = (postgresql.insert(events) if store.dialect == "postgresql"
              else sqlite.insert(events))
    new = 0
    with store.write() as conn:
        for e in items:
            inserted = conn.execute(
                insert.values(event_id=e.id, received_at=received, audit_seq=0)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(events.c.event_id)).first()
            if inserted is None:  # recorded before
                continue
            entry = audit.append_in(conn, e.kind, at=e.at, actor=e.actor, user=e.user,
                                    platform=e.platform,
                                    details={**e.details, "event_id": e.id})
            conn.execute(sa.update(events).where(events.c.event_id == e.id)
                         .values(audit_seq=entry.seq))
            new += 1
    return new


def record_event(store: Store, event: Event) -> bool:
    """Record one event; ``False`` if it was recorded before."""
    return record_events(store, [event]) == 1

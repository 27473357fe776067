from __future__ import annotations

from datetime import timedelta

import pytest

from proxy.store import InvalidInput, audit, events
from proxy.store.db import Store
from tests.store.conftest import T0


def _event(i: int) -> events.Event:
    return events.Event(id=f"gw1-{i:04d}", kind="block", at=T0 + timedelta(seconds=i),
                        user="eva", platform="tiktok", actor="gw1",
                        details={"rule": "role", "action": "block"})


def test_redelivered_batch_is_recorded_once(store: Store) -> None:
    batch = [_event(i) for i in range(5)]
    assert events.record_events(store, batch) == 5
    # the acknowledgement was lost; the gateway sends the batch again plus one more
    assert events.record_events(store, [*batch, _event(5)]) == 1
    assert events.record_event(store, _event(2)) is False
    entries = audit.query(store, kind="block", newest_first=False)
    assert [e.details["event_id"] for e in entries] == [f"gw1-{i:04d}" for i in range(6)]
    assert entries[0].at == T0
    assert entries[0].actor == "gw1"
    assert audit.verify(store).ok


def test_bad_event_refuses_the_whole_batch(store: Store) -> None:
    bad = events.Event(id="gw1-x", kind="block", at=T0, details={"text": "draft!"})
    with pytest.raises(InvalidInput):
        events.record_events(store, [_event(1), bad])
    assert audit.count(store) == 0
    # and the good one can still be delivered later
    assert events.record_events(store, [_event(1)]) == 1

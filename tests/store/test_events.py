from __future__ import annotations

from datetime import timedelta

import pytest

from proxy.store import InvalidInput, audit, auditverify, events
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
    assert auditverify.verify(store).ok


def test_bad_event_refuses_the_whole_batch(store: Store) -> None:
    bad = events.Event(id="gw1-x", kind="block", at=T0, details={"text": "draft!"})
    with pytest.raises(InvalidInput):
        events.record_events(store, [_event(1), bad])
    assert audit.count(store) == 0
    # and the good one can still be delivered later
    assert events.record_events(store, [_event(1)]) == 1


def test_ids_repeated_within_a_batch_count_once(store: Store) -> None:
    assert events.record_events(store, [_event(1), _event(1), _event(2)]) == 2
    assert events.record_events(store, []) == 0
    assert audit.count(store, kind="block") == 2


def test_two_gateways_delivering_the_same_batch_at_once(store_url: str, store: Store) -> None:
    import threading

    from proxy.store import open_store
    from tests.store.conftest import FAST

    other = open_store(store_url, hasher=FAST, audit_key_file=store.audit_key_file)
    batch = [_event(i) for i in range(50)]
    counts: list[int] = []
    barrier = threading.Barrier(2, timeout=30)

    def deliver(s: Store) -> None:
        barrier.wait()
        counts.append(events.record_events(s, batch))

    threads = [threading.Thread(target=deliver, args=(s,)) for s in (store, other)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        other.close()
    assert sorted(counts) == [0, 50]
    assert audit.count(store) == 50
    assert auditverify.verify(store).ok

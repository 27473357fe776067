from __future__ import annotations

from datetime import timedelta

import pytest

from proxy.store import AlreadyDecided, NotFound, audit, grants
from proxy.store import requests as rq
from proxy.store.db import Store
from tests.store.conftest import T0


def _granted(store: Store, user: str = "eva", minutes: int = 60) -> grants.Grant:
    made = rq.create_request(store, user, "facebook", "read", minutes, "research", now=T0)
    return rq.approve(store, made.id, "olga", now=T0)[1]


def test_expire_due_marks_and_returns_expired(store: Store) -> None:
    short = _granted(store, "eva", 30)
    long = _granted(store, "finn", 120)
    assert grants.expire_due(store, T0 + timedelta(minutes=29)) == []
    expired = grants.expire_due(store, T0 + timedelta(minutes=30))
    assert [g.id for g in expired] == [short.id]
    assert expired[0].status == "expired"
    # idempotent: a second node running it finds nothing more
    assert grants.expire_due(store, T0 + timedelta(minutes=31)) == []
    assert [g.id for g in grants.list_active(store, T0 + timedelta(minutes=31))] == [long.id]
    got = grants.get_grant(store, short.id)
    assert got is not None
    assert got.status == "expired"
    assert got.ended_at == short.expires_at
    request = rq.get_request(store, short.request_id or "")
    assert request is not None
    assert request.status == "expired"
    assert [e.grant_id for e in audit.query(store, kind="expire")] == [short.id]


def test_revoke(store: Store) -> None:
    grant = _granted(store)
    revoked = grants.revoke(store, grant.id, "olga", "crisis over", now=T0 + timedelta(minutes=5))
    assert revoked.status == "revoked"
    assert revoked.ended_by == "olga"
    assert grants.list_active(store, T0 + timedelta(minutes=6)) == []
    request = rq.get_request(store, grant.request_id or "")
    assert request is not None
    assert request.status == "revoked"
    with pytest.raises(AlreadyDecided):
        grants.revoke(store, grant.id, "olga", "again")
    with pytest.raises(NotFound):
        grants.revoke(store, "missing", "olga")
    (entry,) = audit.query(store, kind="revoke")
    assert entry.actor == "olga"
    assert entry.details["reason"] == "crisis over"
    # a revoked grant does not expire later
    assert grants.expire_due(store, T0 + timedelta(hours=2)) == []


def test_list_active_leaves_out_overdue_grants_not_yet_expired(store: Store) -> None:
    grant = _granted(store, minutes=10)
    assert [g.id for g in grants.list_active(store, T0 + timedelta(minutes=9))] == [grant.id]
    assert grants.list_active(store, T0 + timedelta(minutes=10)) == []


def test_change_sequence_bumps_with_every_change(store: Store) -> None:
    seen = [grants.current_sequence(store)]

    def step() -> None:
        seen.append(grants.current_sequence(store))

    made = rq.create_request(store, "eva", "x", "read", 60, "why", now=T0)
    step()
    _, grant = rq.approve(store, made.id, "olga", now=T0)
    step()
    other = rq.create_request(store, "finn", "x", "read", 60, "why", now=T0)
    step()
    rq.reject(store, other.id, "olga", "no", now=T0)
    step()
    grants.revoke(store, grant.id, "olga", now=T0)
    step()
    third = _granted(store, "gus", 5)  # create + approve
    step()
    grants.expire_due(store, third.expires_at)
    step()
    rq.create_request(store, "hal", "x", "read", 60, "why", now=T0)
    rq.lapse_pending(store, timedelta(hours=1), now=T0 + timedelta(hours=2))
    step()
    assert seen == [0, 1, 2, 3, 4, 5, 7, 8, 10]
    # nothing that is not a change moves it
    grants.list_active(store, T0)
    grants.expire_due(store, T0)
    assert grants.current_sequence(store) == 10


def test_snapshot_is_sequence_and_active_grants(store: Store) -> None:
    grant = _granted(store)
    snap = grants.snapshot(store, T0 + timedelta(minutes=1))
    assert snap.sequence == grants.current_sequence(store) == 2
    assert [g.id for g in snap.grants] == [grant.id]


def test_sequence_visible_across_two_store_handles(store_url: str, store: Store) -> None:
    """What a second service node sees: another open store on the same database."""
    from proxy.store import open_store
    from tests.store.conftest import FAST

    other = open_store(store_url, hasher=FAST, audit_key_file=store.audit_key_file)
    try:
        before = grants.current_sequence(other)
        _granted(store)
        assert grants.current_sequence(other) == before + 2
        assert len(grants.list_active(other, T0)) == 1
    finally:
        other.close()

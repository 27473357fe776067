from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from proxy.policy.model import Action
from proxy.store import (
    AlreadyDecided,
    InvalidInput,
    NotFound,
    SelfDecision,
    audit,
    auditverify,
    grants,
)
from proxy.store import requests as rq
from proxy.store.db import Store
from tests.store.conftest import T0


def _ask(store: Store, user: str = "eva", minutes: int = 60, **kw: object) -> rq.AccessRequest:
    return rq.create_request(store, user, "x", "allow", minutes, "Crisis communication",
                             kw.get("ticket"), now=kw.get("now", T0))  # type: ignore[arg-type]


def test_create_and_read(store: Store) -> None:
    made = _ask(store, ticket="INC-42")
    assert made.status == "pending"
    assert len(made.id) >= 12
    got = rq.get_request(store, made.id)
    assert got == made
    assert got is not None
    assert got.created_at == T0
    assert got.ticket == "INC-42"
    assert rq.get_request(store, "nope") is None
    assert [r.id for r in rq.list_requests(store, user="eva")] == [made.id]
    assert rq.list_requests(store, user="someone-else") == []
    assert [r.id for r in rq.list_requests(store, status="pending")] == [made.id]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("access", {"access": "post"}),
        ("duration_minutes", {"duration_minutes": 0}),
        ("justification", {"justification": "   "}),
        ("platform", {"platform": ""}),
    ],
)
def test_bad_request_names_the_field(store: Store, field: str, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"user": "eva", "platform": "x", "access": "read",
                               "duration_minutes": 30, "justification": "why"}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as exc:
        rq.create_request(store, **args)  # type: ignore[arg-type]
    assert exc.value.field == field
    assert rq.list_requests(store) == []


def test_approve_starts_the_clock_at_approval(store: Store) -> None:
    made = _ask(store, minutes=120)
    later = T0 + timedelta(hours=3)
    request, grant = rq.approve(store, made.id, "olga", duration_minutes=60, now=later)
    assert request.status == "approved"
    assert request.decided_by == "olga"
    assert request.grant_id == grant.id
    assert grant.starts_at == later
    assert grant.expires_at == later + timedelta(hours=1)
    assert grant.user == "eva"
    assert grant.platform == "x"
    assert grant.action == "allow"
    active = grants.list_active(store, later + timedelta(minutes=59))
    assert [g.id for g in active] == [grant.id]
    assert grants.list_active(store, later + timedelta(minutes=60)) == []
    policy_grant = active[0].to_policy_grant()
    assert policy_grant.action is Action.allow
    assert policy_grant.expires_at == grant.expires_at


def test_reject_with_reason(store: Store) -> None:
    made = _ask(store)
    rejected = rq.reject(store, made.id, "olga", "Use the official account", now=T0)
    assert rejected.status == "rejected"
    assert rejected.reason == "Use the official account"
    assert grants.list_active(store, T0) == []
    with pytest.raises(InvalidInput):
        rq.reject(store, _ask(store).id, "olga", " ")


def test_nobody_decides_their_own_request(store: Store) -> None:
    made = _ask(store, user="olga")
    with pytest.raises(SelfDecision):
        rq.approve(store, made.id, "olga", now=T0)
    with pytest.raises(SelfDecision):
        rq.reject(store, made.id, "olga", "no", now=T0)
    got = rq.get_request(store, made.id)
    assert got is not None
    assert got.status == "pending"
    assert grants.list_active(store, T0) == []


def test_decided_once(store: Store) -> None:
    made = _ask(store)
    rq.approve(store, made.id, "olga", now=T0)
    with pytest.raises(AlreadyDecided) as exc:
        rq.reject(store, made.id, "piet", "too late", now=T0)
    assert exc.value.status == "approved"
    with pytest.raises(NotFound):
        rq.approve(store, "missing", "olga", now=T0)


def test_two_approvers_at_once_one_wins(store: Store) -> None:
    made = _ask(store)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def decide(approver: str) -> None:
        barrier.wait()
        try:
            if approver == "olga":
                rq.approve(store, made.id, approver, now=T0)
            else:
                rq.reject(store, made.id, approver, "no", now=T0)
            outcomes.append("won")
        except AlreadyDecided:
            outcomes.append("refused")

    threads = [threading.Thread(target=decide, args=(a,)) for a in ("olga", "piet")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["refused", "won"]
    decisions = audit.query(store, kind=["approve", "reject"])
    assert len(decisions) == 1
    got = rq.get_request(store, made.id)
    assert got is not None
    assert got.status == {"approve": "approved", "reject": "rejected"}[decisions[0].kind]
    assert len(grants.list_grants(store)) == (1 if got.status == "approved" else 0)


def test_lapse_old_pending_requests(store: Store) -> None:
    old = _ask(store, now=T0)
    fresh = _ask(store, now=T0 + timedelta(hours=47))
    decided = _ask(store, now=T0)
    rq.reject(store, decided.id, "olga", "no", now=T0)
    lapsed = rq.lapse_pending(store, timedelta(hours=24), now=T0 + timedelta(hours=48))
    assert [r.id for r in lapsed] == [old.id]
    statuses = {r.id: r.status for r in rq.list_requests(store)}
    assert statuses == {old.id: "lapsed", fresh.id: "pending", decided.id: "rejected"}
    with pytest.raises(AlreadyDecided):
        rq.approve(store, old.id, "olga", now=T0 + timedelta(hours=49))
    assert [e.request_id for e in audit.query(store, kind="lapse")] == [old.id]


def test_200_concurrent_requests_all_stored_once(store: Store) -> None:
    def create(i: int) -> str:
        return rq.create_request(store, f"user{i}", "x", "read", 30, f"reason {i}",
                                 now=T0).id

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(create, range(200), timeout=120))
    assert len(set(ids)) == 200
    stored = rq.list_requests(store, limit=1000)
    assert sorted(r.id for r in stored) == sorted(ids)
    assert sorted(r.user for r in stored) == sorted(f"user{i}" for i in range(200))
    assert rq.count_requests(store, status="pending") == 200
    assert audit.count(store, kind="request") == 200
    assert grants.current_sequence(store) == 200
    report = auditverify.verify(store)
    assert report.ok, report.problems
    assert report.entries == 200

from __future__ import annotations

import io
import itertools
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from proxy.store import InvalidInput, audit, auditverify, open_store
from proxy.store.db import Store
from proxy.store.schema import audit_log
from tests.store.conftest import FAST, T0


def _fill(store: Store, n: int = 6) -> list[audit.AuditEntry]:
    return [audit.append(store, "block", at=T0 + timedelta(minutes=i), actor="gw1",
                         user=f"u{i % 2}", platform="tiktok" if i % 3 else "x",
                         details={"rule": "role", "n": i})
            for i in range(n)]


def _sql(store: Store, *statements: str) -> None:
    with store.write() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def test_entries_chain_and_verify(store: Store) -> None:
    entries = _fill(store)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    report = auditverify.verify(store)
    assert report.ok
    assert report.entries == 6
    assert report.last_seq == 6
    assert audit.head(store) == (6, entries[-1].hash)
    stored = audit.query(store, newest_first=False)
    assert stored == entries


def test_empty_log_verifies(store: Store) -> None:
    report = auditverify.verify(store)
    assert report.ok
    assert report.entries == 0


def test_edited_entry_is_named(store: Store) -> None:
    _fill(store)
    _sql(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    report = auditverify.verify(store)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "edited")]
    assert str(report.problems[0]).startswith("seq 3: edited")


def test_edited_details_are_detected(store: Store) -> None:
    _fill(store)
    _sql(store, """UPDATE audit_log SET details = '{"n":4,"rule":"grant"}' WHERE seq = 5""")
    assert [(p.seq, p.kind) for p in auditverify.verify(store).problems] == [(5, "edited")]


def test_edit_rehashed_without_the_key_is_named(store: Store) -> None:
    """Recomputing an edited entry's hash the unkeyed way does not make it valid."""
    _fill(store)
    with store.write() as conn:
        row = conn.execute(sa.select(audit_log).where(audit_log.c.seq == 3)).one()
        values = {**row._mapping, "actor": "mallory"}
        del values["hash"], values["key_id"]
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 3)
                     .values(actor="mallory", hash=audit.entry_hash(**values)))
    report = auditverify.verify(store)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "edited"), (4, "broken-link")]
    assert "entry 3" in report.problems[1].message


def test_deleted_entry_is_named(store: Store) -> None:
    _fill(store)
    _sql(store, "DELETE FROM audit_log WHERE seq = 3")
    report = auditverify.verify(store)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "deleted")]
    assert "entry 3 is missing" in report.problems[0].message


def test_deleted_first_and_last_entries_are_named(store: Store) -> None:
    _fill(store)
    _sql(store, "DELETE FROM audit_log WHERE seq IN (1, 2, 6)")
    report = auditverify.verify(store)
    assert [(p.seq, p.kind) for p in report.problems] == [(1, "deleted"), (6, "truncated")]


def test_reordered_entries_are_named(store: Store) -> None:
    _fill(store)
    _sql(store,
         "UPDATE audit_log SET seq = -1 WHERE seq = 3",
         "UPDATE audit_log SET seq = 3 WHERE seq = 4",
         "UPDATE audit_log SET seq = 4 WHERE seq = -1")
    report = auditverify.verify(store)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "reordered"), (4, "reordered")]
    assert report.problems[0].message == "entry 4 was moved here"
    assert report.problems[1].message == "entry 3 was moved here"


def test_reordered_times_are_detected(store: Store) -> None:
    """Swapping the contents of two rows (keeping seq) is a reordering too."""
    _fill(store)
    _sql(store,
         "UPDATE audit_log SET seq = -1 WHERE seq = 2",
         "UPDATE audit_log SET seq = 2 WHERE seq = 5",
         "UPDATE audit_log SET seq = 5 WHERE seq = -1")
    kinds = {(p.seq, p.kind) for p in auditverify.verify(store).problems}
    assert kinds == {(2, "reordered"), (5, "reordered")}


def test_prune_writes_a_checkpoint_and_the_chain_still_verifies(store: Store) -> None:
    entries = _fill(store, 10)
    result = audit.prune(store, T0 + timedelta(minutes=4), actor="admin",
                         now=T0 + timedelta(days=1))
    assert result is not None
    assert result.pruned == 4
    assert result.through_seq == 4
    cp = result.checkpoint
    assert cp.kind == "checkpoint"
    assert cp.seq == 11
    assert cp.details["pruned_through"] == 4
    assert cp.details["pruned_hash"] == entries[3].hash
    remaining = audit.query(store, newest_first=False, limit=100)
    assert [e.seq for e in remaining] == [5, 6, 7, 8, 9, 10, 11]
    report = auditverify.verify(store)
    assert report.ok, report.problems
    assert report.first_seq == 5
    # still tamper-evident after pruning
    _sql(store, "DELETE FROM audit_log WHERE seq = 5")
    assert [(p.seq, p.kind) for p in auditverify.verify(store).problems] == [(5, "deleted")]


def test_prune_everything_and_again(store: Store) -> None:
    _fill(store, 3)
    first = audit.prune(store, T0 + timedelta(days=1), now=T0 + timedelta(days=1))
    assert first is not None
    assert first.pruned == 3
    assert auditverify.verify(store).ok
    audit.append(store, "policy-reload", at=T0 + timedelta(days=2), details={"version": "v2"})
    second = audit.prune(store, T0 + timedelta(days=3), now=T0 + timedelta(days=3))
    assert second is not None
    assert second.pruned == 2
    assert second.through_seq == 5
    assert auditverify.verify(store).ok
    assert audit.prune(store, T0, now=T0) is None


def test_draft_text_is_refused(store: Store) -> None:
    for details in ({"text": "my draft"}, {"findings": [{"draft": "x"}]}, {"Body": "x"}):
        with pytest.raises(InvalidInput):
            audit.append(store, "warn", details=details)
    assert audit.count(store) == 0
    with pytest.raises(ValueError, match="not a valid"):
        audit.append(store, "bogus-kind")


def test_query_filters_and_paging(store: Store) -> None:
    _fill(store, 6)
    audit.append(store, "policy-reload", at=T0 + timedelta(hours=1), actor="service")
    assert [e.seq for e in audit.query(store, kind="block", user="u1")] == [6, 4, 2]
    assert [e.seq for e in audit.query(store, platform="x", newest_first=False)] == [1, 4]
    assert [e.seq for e in audit.query(store, actor="service")] == [7]
    window = audit.query(store, since=T0 + timedelta(minutes=2),
                         until=T0 + timedelta(minutes=4), newest_first=False)
    assert [e.seq for e in window] == [3, 4]
    assert [e.seq for e in audit.query(store, limit=2, offset=1)] == [6, 5]
    assert audit.count(store, kind=["block", "policy-reload"]) == 7
    assert audit.count(store, user="u0") == 3


def test_csv_export(store: Store) -> None:
    _fill(store, 2)
    audit.append(store, "login", user="=cmd|' /C calc'!A0", at=T0 + timedelta(hours=1))
    out = io.StringIO()
    assert audit.export_csv(store, out) == 3
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(audit.CSV_COLUMNS)
    assert lines[1].startswith("1,2026-11-23T09:00:00.000000+00:00,block,gw1,u0,x,")
    assert "'=cmd" in lines[3]  # a formula is quoted for spreadsheets


def test_concurrent_appends_from_two_nodes_keep_one_chain(store_url: str, store: Store) -> None:
    other = open_store(store_url, hasher=FAST, audit_key_file=store.audit_key_file)
    barrier = threading.Barrier(4, timeout=30)

    def work(s: Store, name: str) -> None:
        barrier.wait()
        for i in range(25):
            audit.append(s, "warn", actor=name, details={"i": i})

    threads = [threading.Thread(target=work, args=(s, f"node{k}"))
               for k, s in enumerate((store, other, store, other))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        other.close()
    report = auditverify.verify(store)
    assert report.ok, report.problems
    assert report.entries == 100
    assert report.last_seq == 100

"""The keyed chain: its key file, and what the upgrade does to a chain hashed the old way."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from proxy.store import audit, auditkeys, auditverify, open_store, upgrade
from proxy.store.db import create_engine
from proxy.store.schema import audit_log
from tests.store.conftest import FAST, T0


def test_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "var" / "audit.keys"
    ring = auditkeys.load(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert auditkeys.load(path) == ring
    assert ring.current == auditkeys.key_id(ring.keys[ring.current])


def test_a_malformed_key_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.keys"
    path.write_text("# keys\n" + "ab" * 32 + "\nnot-a-key\n")
    with pytest.raises(auditkeys.AuditKeyError, match=r"audit.keys:3: not an audit key"):
        auditkeys.load(path)


def _legacy_chain(url: str, n: int) -> None:
    """A log at schema 0001, hashed the old (unkeyed) way, as before the upgrade."""
    upgrade(url, "0001")
    engine = create_engine(url)
    prev = audit.GENESIS
    with engine.begin() as conn:
        for seq in range(1, n + 1):
            values = {"seq": seq, "at": T0 + timedelta(minutes=seq), "kind": "block",
                      "actor": "gw1", "user": "eva", "platform": "x", "request_id": None,
                      "grant_id": None, "details": json.dumps({"n": seq}), "prev_hash": prev}
            prev = audit.entry_hash(**values)
            row = {**values, "at": values["at"].replace(tzinfo=None), "hash": prev}
            conn.execute(sa.text(
                "INSERT INTO audit_log (seq, at, kind, actor, \"user\", platform, request_id, "
                "grant_id, details, prev_hash, hash) VALUES (:seq, :at, :kind, :actor, :user, "
                ":platform, :request_id, :grant_id, :details, :prev_hash, :hash)"), row)
        conn.execute(sa.text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": n, "h": prev})
    engine.dispose()


def test_upgrade_keeps_old_entries_verifiable_and_keys_new_ones(tmp_path: Path,
                                                                 postgres_url: str) -> None:
    for url in (f"sqlite:///{tmp_path / 'old.db'}", postgres_url):
        _legacy_chain(url, 4)
        store = open_store(url, hasher=FAST, audit_key_file=tmp_path / "audit.keys")
        try:
            entry = audit.append(store, "warn", actor="gw1")
            assert entry.seq == 5
            assert entry.key_id == store.audit_keys.current
            report = auditverify.verify(store)
            assert report.ok, report.problems
            assert report.legacy_through == 4
            # Rewriting an old entry the old way, all the way to the last old one, breaks
            # the first keyed entry's link, whose HMAC covers the last old hash.
            with store.write() as conn:
                rows = conn.execute(sa.select(audit_log).where(audit_log.c.seq <= 4)
                                    .order_by(audit_log.c.seq)).mappings().all()
                prev = audit.GENESIS
                for row in rows:
                    values = {k: row[k] for k in ("seq", "at", "kind", "actor", "user",
                                                  "platform", "request_id", "grant_id",
                                                  "details")}
                    if row["seq"] == 2:
                        values["actor"] = "mallory"
                    prev_hash, prev = prev, audit.entry_hash(**values, prev_hash=prev)
                    conn.execute(sa.text("UPDATE audit_log SET actor = :a, prev_hash = :p, "
                                         "hash = :h WHERE seq = :s"),
                                 {"a": values["actor"], "p": prev_hash, "h": prev,
                                  "s": row["seq"]})
            problems = [(p.seq, p.kind) for p in auditverify.verify(store).problems]
            assert problems == [(5, "broken-link")]
        finally:
            store.close()

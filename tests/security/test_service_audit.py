"""The audit chain cannot be rewritten by someone who holds the database but not the key.

The attack, exactly as a review did it against the unkeyed chain: a real service records
an approval; the attacker changes the approver's name in the database, recomputes every
following hash with the project's own (old, unkeyed) ``entry_hash`` and updates the head
row. ``sargs audit verify`` must fail and name the edited entry.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from proxy.store import audit, requests
from proxy.store.db import Store
from proxy.store.schema import audit_head, audit_log
from tests.support.service import running_service

FORM = {"platform": "tiktok", "access": "read", "duration": "60",
        "justification": "Monitoring a crisis"}


def _rewrite(store: Store, seq: int, *, drop_keys: bool) -> None:
    """Change entry ``seq``'s actor to ``mallory`` and re-hash it and everything after it
    with the unkeyed ``audit.entry_hash``, then move the head row along."""
    with store.write() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.seq >= seq)
                            .order_by(audit_log.c.seq)).all()
        prev: str | None = None
        for row in rows:
            values: dict[str, Any] = dict(row._mapping)
            del values["hash"], values["key_id"]
            if row.seq == seq:
                values["actor"] = "mallory"
            if prev is not None:
                values["prev_hash"] = prev
            prev = audit.entry_hash(**values)
            change = {"actor": values["actor"], "prev_hash": values["prev_hash"], "hash": prev}
            if drop_keys:
                change["key_id"] = None
            conn.execute(sa.update(audit_log).where(audit_log.c.seq == row.seq).values(**change))
        head: dict[str, Any] = {"seq": rows[-1].seq, "hash": prev}
        if drop_keys:  # claim the whole log predates the keyed chain
            head["legacy_through"] = rows[-1].seq
        conn.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(**head))


def _sargs(tmp_path: Path, store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SARGS_VAR_DIR": str(tmp_path), "SARGS_DATABASE_URL": store_url}
    return subprocess.run([sys.executable, "-m", "proxy.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("drop_keys", [False, True], ids=["rehashed", "rehashed-unkeyed"])
async def test_rewritten_approver_is_named_by_verify(tmp_path: Path, store_url: str,
                                                     drop_keys: bool) -> None:
    async with running_service(tmp_path, store_url) as svc:
        async with svc.client() as anna:
            await anna.login("anna", "anna-pw")
            await anna.get("/access/request")
            assert (await anna.post_form("/api/v1/exceptions", FORM)).status == 303
        pending = await asyncio.to_thread(requests.list_requests, svc.store)
        async with svc.client() as peter:
            await peter.login("peter", "peter-pw")
            await peter.get("/approvals")
            r = await peter.post_form(f"/approvals/{pending[0].id}/approve",
                                      {"duration": "60"})
            assert r.status == 303
        approvals = await asyncio.to_thread(audit.query, svc.store, kind="approve")
        assert approvals[0].actor == "peter"
        target = approvals[0].seq
        # The service anchored the head when it started; anchor again after the approval.
        anchored = _sargs(tmp_path, store_url, "audit", "anchor")
        assert anchored.returncode == 0, anchored.stderr
        # Entries after the approval (logouts, more approvals) would be rewritten too.
        async with svc.client() as rita:
            await rita.login("rita", "rita-pw")
        assert _sargs(tmp_path, store_url, "audit", "verify").returncode == 0

        await asyncio.to_thread(_rewrite, svc.store, target, drop_keys=drop_keys)
        rewritten = await asyncio.to_thread(audit.query, svc.store, kind="approve")
        assert rewritten[0].actor == "mallory"

    result = _sargs(tmp_path, store_url, "audit", "verify")
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    expected = "unkeyed" if drop_keys else "edited"
    assert first.startswith(f"seq {target}: {expected}"), result.stdout
    # The anchor written after the approval recorded the true hash of that entry.
    assert f"seq {target}: anchor-mismatch" in result.stdout
    assert "FAILED" in result.stderr
    anchors = (tmp_path / "audit-anchors.jsonl").read_text().splitlines()
    assert len(anchors) >= 2
    assert {"seq", "hash", "at", "key_id", "mac"} <= set(json.loads(anchors[-1]))

"""A service node follows its policy files: a good change applies, a bad one is refused
and the old policy stays; both are recorded in the audit log."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp

from proxy.runtime import PolicyState
from proxy.store import audit, auditverify
from tests.support.gateway import copy_policy
from tests.support.service import Service, running_service


async def _version(svc: Service) -> str:
    async with aiohttp.ClientSession() as s, s.get(svc.url + "/healthz") as r:
        version: str = (await r.json())["policy"]
        return version


async def _reloads(svc: Service, count: int) -> list[audit.AuditEntry]:
    for _ in range(100):  # the watcher polls every second; give it up to 10 s
        found = await asyncio.to_thread(audit.query, svc.store, kind="policy-reload")
        if len(found) >= count:
            return list(found)
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} policy-reload entries, found {len(found)}")


def _touch(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 2))  # a coarse clock still sees it


async def test_good_and_bad_changes_are_applied_or_refused_and_audited(tmp_path: Path) -> None:
    policy_dir = copy_policy(tmp_path)
    roles = policy_dir / "roles.yaml"
    state = PolicyState(policy_dir)
    async with running_service(tmp_path, f"sqlite:///{tmp_path / 'w.db'}", policy=state) as svc:
        first = await _version(svc)
        original = roles.read_text(encoding="utf-8")
        _touch(roles, original.replace("max_grant_hours: 24", "max_grant_hours: 12"))
        [applied] = await _reloads(svc, 1)
        second = await _version(svc)
        assert second != first
        assert applied.details["applied"] is True
        assert (applied.details["from"], applied.details["to"]) == (first, second)

        _touch(roles, original.replace("tiktok: block", "tiktok: alow", 1))
        entries = await _reloads(svc, 2)
        refused = next(e for e in entries if e.details["applied"] is False)
        assert "roles.yaml:" in str(refused.details["problem"])
        assert "'alow' is not one of allow, read, block" in str(refused.details["problem"])
        assert await _version(svc) == second  # the old policy stays in force
        report = await asyncio.to_thread(auditverify.verify, svc.store)
        assert report.problems == []


def test_shared_state_handles_a_change_once(tmp_path: Path) -> None:
    policy_dir = copy_policy(tmp_path)
    state = PolicyState(policy_dir)
    heard: list[tuple[str, bool]] = []
    state.subscribe(lambda old, new, error: heard.append((old, new is not None)))
    _touch(policy_dir / "roles.yaml",
           (policy_dir / "roles.yaml").read_text().replace("max_grant_hours: 24",
                                                            "max_grant_hours: 12"))
    assert state.reload(only_if_changed=True) is None
    assert state.reload(only_if_changed=True) is None  # a second watcher: nothing to do
    assert len(heard) == 1
    assert heard[0][1] is True

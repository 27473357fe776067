"""Ending a session ends it: an old cookie replayed after logout (or after a password change,
a role change, or "log out everywhere" from another browser) gets no page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.service.auth import SESSION_COOKIE
from proxy.store import sessions, users
from tests.support.service import Client, Service, running_service


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url) as s:
        yield s


def _cookie(client: Client) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == SESSION_COOKIE)


async def _replay(svc: Service, cookie: str, path: str = "/approvals") -> int:
    async with svc.client() as attacker:
        r = await attacker.get(path, allow_redirects=False,
                               headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
        return r.status


async def test_old_cookie_after_logout_is_refused(svc: Service) -> None:
    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        stolen = _cookie(peter)
        assert await _replay(svc, stolen) == 200
        await peter.get("/approvals")
        assert (await peter.post_form("/logout", {})).status == 303
    assert await _replay(svc, stolen) == 303  # to the login page
    async with svc.client() as attacker:
        r = await attacker.session.get(svc.url + "/api/v1/exceptions",
                                       headers={"Cookie": f"{SESSION_COOKIE}={stolen}"})
        assert r.status == 401


@pytest.mark.parametrize("change", ["password", "roles", "remove"])
async def test_account_changes_end_sessions_at_once(svc: Service, change: str) -> None:
    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        stolen = _cookie(peter)
    assert await _replay(svc, stolen) == 200
    if change == "password":
        await asyncio.to_thread(users.set_password, svc.store, "peter", "new-pw", actor="ada")
    elif change == "roles":
        await asyncio.to_thread(users.set_roles, svc.store, "peter", ["staff"], actor="ada")
    else:
        await asyncio.to_thread(users.remove_user, svc.store, "peter", actor="ada")
    assert await _replay(svc, stolen, "/access/mine") == 303


async def test_log_out_everywhere_ends_other_browsers(svc: Service) -> None:
    async with svc.client() as laptop, svc.client() as phone:
        await laptop.login("anna", "anna-pw")
        await phone.login("anna", "anna-pw")
        lost = _cookie(phone)
        page = await laptop.get("/sessions")
        assert page.status == 200
        assert laptop.last_page.count("/end\"") == 2  # both sessions listed, each with End
        r = await laptop.post_form("/sessions/end-all", {})
        assert r.status == 303
        assert (await phone.get("/access/mine", allow_redirects=False)).status == 303
        assert (await laptop.get("/access/mine", allow_redirects=False)).status == 303
    assert await _replay(svc, lost, "/access/mine") == 303
    assert await asyncio.to_thread(sessions.list_live, svc.store, "anna") == []


async def test_a_user_cannot_end_someone_elses_session(svc: Service) -> None:
    async with svc.client() as anna, svc.client() as peter:
        await anna.login("anna", "anna-pw")
        await peter.login("peter", "peter-pw")
        victim = (await asyncio.to_thread(sessions.list_live, svc.store, "peter"))[0]
        await anna.get("/sessions")
        r = await anna.post_form(f"/sessions/{victim.id}/end", {})
        assert r.status == 303
        assert (await peter.get("/access/mine", allow_redirects=False)).status == 200


async def test_the_database_holds_no_usable_cookie(svc: Service) -> None:
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        row = (await asyncio.to_thread(sessions.list_live, svc.store, "anna"))[0]
    assert await _replay(svc, row.id, "/access/mine") == 303

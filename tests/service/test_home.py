"""The service's start page: links for everyone, approver pages for approvers, guidelines
in the reader's language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.service import Service, running_service


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(tmp_path, f"sqlite:///{tmp_path / 'home.db'}") as s:
        yield s


@pytest.mark.parametrize(("lang", "heading", "guideline"), [
    ("en", "Social media at work", "Access to social media"),
    ("lv", "Sociālie tīkli darbā", "Piekļuve sociālajiem tīkliem"),
    ("sv", "Sociala medier i arbetet", "Tillgång till sociala medier"),
    ("sq", "Mediat sociale në punë", "Qasja në mediat sociale"),
])
async def test_start_page_in_four_languages(svc: Service, lang: str, heading: str,
                                            guideline: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(
            svc.url + "/", headers={"Accept-Language": lang}) as r:
        page = await r.text()
    assert r.status == 200
    assert heading in page
    assert guideline in page
    assert 'href="/access/request"' in page
    assert 'href="/login"' in page
    assert 'href="/approvals"' not in page


async def test_approvers_see_their_pages(svc: Service) -> None:
    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        await peter.get("/")
        assert 'href="/approvals"' in peter.last_page
        assert 'href="/login"' not in peter.last_page

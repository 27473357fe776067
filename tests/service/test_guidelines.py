"""The guidelines page the compose guard's cards link to, and the joined guard script."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from proxy.guardscript import join, parts
from proxy.policy.loader import load
from proxy.settings import Settings
from tests.support.service import Service, running_service


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(tmp_path, f"sqlite:///{tmp_path / 'gl.db'}") as s:
        yield s


async def get(svc: Service, path: str, **headers: str) -> tuple[int, str, CIMultiDict[str]]:
    async with aiohttp.ClientSession() as s, s.get(svc.url + path, headers=headers) as r:
        return r.status, await r.text(), CIMultiDict(r.headers)


@pytest.mark.parametrize(("lang", "title", "clause"), [
    ("en", "Guidelines for social media", "Personal data"),
    ("lv", "Sociālo mediju vadlīnijas", "Personas dati"),
    ("sv", "Riktlinjer för sociala medier", "Personuppgifter"),
    ("sq", "Udhëzime për mediat sociale", "Të dhënat personale"),
])
async def test_the_page_in_four_languages(svc: Service, lang: str, title: str,
                                          clause: str) -> None:
    status, page, headers = await get(svc, f"/guidelines?lang={lang}")
    assert status == 200
    assert headers["Content-Language"] == lang
    assert f'<html lang="{lang}">' in page
    assert f"<h1>{title}</h1>" in page
    assert f"<h2>{clause}</h2>" in page
    assert re.search(rf'href="\?lang={lang}"[^>]*aria-current="page"', page)  # the switch


async def test_every_rule_lands_on_the_clause_it_names(svc: Service) -> None:
    _, page, _ = await get(svc, "/guidelines?lang=en")
    policy = load(Settings().policy).policy
    for rule_id, rule in policy.compliance.rules.items():
        if not rule.guideline:
            continue
        clause = page.split(f'<li id="{rule.guideline}">', 1)[1].split("</li>", 1)[0]
        assert f'id="rule-{rule_id}"' in clause, rule_id
        said = re.sub(r"\{\w+\}", "…", rule.message.get("en"))  # "{until}": per finding
        assert said in html.unescape(clause)  # what Sargs marks, as a sentence
    assert not re.search(r"\{\w+\}", page.split("</style>", 1)[1])  # no unfilled placeholder


async def test_the_language_comes_from_the_browser_and_nothing_is_reflected(
    svc: Service,
) -> None:
    status, page, headers = await get(svc, "/guidelines?lang=<script>x</script>",
                                      **{"Accept-Language": "sv-SE,sv;q=0.9"})
    assert status == 200
    assert headers["Content-Language"] == "sv"
    assert "<script>x" not in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]


async def test_the_script_is_the_parts_joined_with_an_etag(svc: Service) -> None:
    status, body, headers = await get(svc, "/static/compose-guard.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")
    assert body.encode() == join(parts())
    assert [p.name for p in parts()][-1] == "main.js"
    status, _, _ = await get(svc, "/static/compose-guard.js", **{"If-None-Match": headers["ETag"]})
    assert status == 304
    status, _, _ = await get(svc, "/static/guard/main.js")  # the extension loads them one by one
    assert status == 200

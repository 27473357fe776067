"""The dashboard: figures per platform and per rule, as inline SVG readable without scripts."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from proxy.service.charts import bar_chart
from proxy.store import audit, requests
from tests.support.service import running_service


async def test_dashboard_counts_requests_grants_and_blocks(tmp_path: Path, store_url: str
                                                           ) -> None:
    async with running_service(tmp_path, store_url) as svc:
        store = svc.store
        for platform in ("tiktok", "tiktok", "x"):
            made = await asyncio.to_thread(requests.create_request, store, "anna", platform,
                                           "allow", 60, "why")
        await asyncio.to_thread(requests.approve, store, made.id, "peter")
        now = datetime.now(UTC)
        for days, kind, rule in [(0, "block", "role"), (0, "block", "role"),
                                 (1, "warn", "personal-data"), (20, "block", "deny")]:
            await asyncio.to_thread(audit.append, store, kind, at=now - timedelta(days=days),
                                    user="anna", platform="x", details={"rule": rule})
        async with svc.client() as peter:
            await peter.login("peter", "peter-pw")
            r = await peter.get("/dashboard")
            assert r.status == 200
            page = peter.last_page
    assert page.count("<svg") == 2
    assert "<script>" not in page.split("</main>")[0]  # the charts need no script
    rows = dict(re.findall(r'<tr><td>([^<]+)</td><td class="num">(\d+)</td>', page))
    assert rows["TikTok"] == "2"
    assert rows["X (Twitter)"] == "1"
    # Legends and tables name rules, not ids: an access clause by the service's word,
    # a check rule by its guideline's title.
    assert rows["Blocked · Your role&#39;s access"] == "2"
    assert rows["Warned · Personal data"] == "1"
    assert not any("deny" in name or "everyone" in name for name in rows)  # too old
    assert "1 request(s) waiting" not in page  # two pending: tiktok, tiktok
    assert "2 request(s) waiting, 1 grant(s) in force" in page


def test_chart_labels_are_escaped() -> None:
    svg = str(bar_chart([("<script>alert(1)</script>", 3, 1)], ("a", "b"), title="t&t"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "<title>t&amp;t</title>" in svg


COACHED = [
    ("post-simulated", "anna", {"rules": ["offensive"], "severity": "warn", "would": "block"}),
    ("post-simulated", "anna", {"rules": ["offensive"], "severity": "warn", "would": "block"}),
    ("post-simulated", "cora", {"rules": ["offensive"], "severity": "warn", "would": "warn"}),
    ("post-override", "anna", {"rules": ["personal-data"], "way": "justify",
                               "reason": "public figure's official number", "text_hash": "a" * 64}),
    ("post-override", "cora", {"rules": ["personal-data"], "way": "justify",
                               "reason": "public figure's  official number",
                               "text_hash": "b" * 64}),
    ("post-override", "cora", {"rules": ["personal-data"], "way": "acknowledge",
                               "text_hash": "c" * 64}),
    ("false-positive", "anna", {"rules": ["offensive"], "text_hash": "d" * 64}),
    ("review-request", "anna", {"rules": ["classified"]}),
    ("review-request", "cora", {"rules": ["classified"]}),
    ("review-approve", "anna", {"rules": ["classified"]}),
    ("review-return", "cora", {"rules": ["classified"], "comment_length": 40}),
]


async def test_dashboard_shows_what_simulation_and_people_did_per_rule(
        tmp_path: Path, store_url: str) -> None:
    async with running_service(tmp_path, store_url) as svc:
        for kind, user, details in COACHED:
            await asyncio.to_thread(audit.append, svc.store, kind, actor=user, user=user,
                                    platform="x", details=details)
        await asyncio.to_thread(audit.append, svc.store, "post-override", actor="anna",
                                user="anna", platform="x",
                                at=datetime.now(UTC) - timedelta(days=30),
                                details={"rules": ["minors-consent"], "way": "acknowledge"})
        async with svc.client(**{"Accept-Language": "sv"}) as peter:
            await peter.login("peter", "peter-pw")
            await peter.get("/dashboard")
            page = peter.last_page
    table = page.split('id="coaching"', 1)[1].split("</figure>", 1)[0]
    figures = {rule: dict(re.findall(r'data-col="([a-z-]+)"[^>]*>(\d+)</td>', row))
               for rule, row in re.findall(r'<tr data-rule="([a-z-]+)">(.*?)</tr>', table)}
    assert figures["offensive"] == {"would-block": "2", "would-warn": "1", "override": "0",
                                    "false-positive": "1", "review-request": "0",
                                    "review-approve": "0", "review-return": "0"}
    assert figures["personal-data"]["override"] == "3"
    assert figures["classified"] == {"would-block": "0", "would-warn": "0", "override": "0",
                                     "false-positive": "0", "review-request": "2",
                                     "review-approve": "1", "review-return": "1"}
    assert "minors-consent" not in figures  # older than the dashboard's window
    # In the reader's language, by the rules' names; the same reason counted once, twice.
    assert "Skulle blockera (simulering)" in table
    assert ">Personuppgifter<" in table
    assert "public figure&#39;s official number <span class=\"repeat\">(2)</span>" in table


async def test_dashboard_says_so_when_nothing_was_coached(tmp_path: Path, store_url: str
                                                          ) -> None:
    async with running_service(tmp_path, store_url) as svc, svc.client() as peter:
        await peter.login("peter", "peter-pw")
        await peter.get("/dashboard")
    assert "No findings were simulated, overridden, reported or reviewed" in peter.last_page

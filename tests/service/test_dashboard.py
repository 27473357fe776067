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
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td>", page))
    assert rows["TikTok"] == "2"
    assert rows["X (Twitter)"] == "1"
    assert rows["block · role"] == "2"
    assert rows["warn · personal-data"] == "1"
    assert "block · deny" not in rows  # older than the dashboard's window
    assert "1 request(s) waiting" not in page  # two pending: tiktok, tiktok
    assert "2 request(s) waiting, 1 grant(s) in force" in page


def test_chart_labels_are_escaped() -> None:
    svg = str(bar_chart([("<script>alert(1)</script>", 3, 1)], ("a", "b"), title="t&t"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "<title>t&amp;t</title>" in svg

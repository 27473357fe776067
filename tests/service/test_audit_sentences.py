"""The audit page reads as sentences: people's decisions first, repeated blocks collapsed,
names rather than ids, in the reader's language; the CSV keeps every entry as stored."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from proxy.store import audit, requests
from tests.support.service import running_service


async def test_people_first_repeats_collapsed_names_not_ids(tmp_path: Path, store_url: str
                                                            ) -> None:
    async with running_service(tmp_path, store_url) as svc:
        store = svc.store
        now = datetime.now(UTC)

        def seed() -> None:
            made = requests.create_request(store, "anna", "tiktok", "allow", 90, "campaign")
            for i in range(4):  # one run of the same block ...
                audit.append(store, "block", at=now + timedelta(seconds=i), user="cora",
                             platform="x", details={"rule": "role"})
            audit.append(store, "warn", at=now + timedelta(seconds=5), user="cora",
                         platform="x", details={"findings": [
                             {"rule": "personal-data", "severity": "warn"}]})
            audit.append(store, "block", at=now + timedelta(seconds=6), user="cora",
                         platform="x", details={"rule": "role"})  # ... and a new one
            requests.reject(store, made.id, "peter", "not now")
            audit.append(store, "post-override", actor="anna", user="anna", platform="x",
                         at=now + timedelta(seconds=8), details={
                             "rules": ["personal-data"], "way": "justify",
                             "reason": "public figure's official number",
                             "text_hash": "a" * 64})

        await asyncio.to_thread(seed)
        async with svc.client(**{"Accept-Language": "lv"}) as peter:
            await peter.login("peter", "peter-pw")
            await peter.get("/audit")
            page = peter.last_page
            r = await peter.get("/audit.csv?kind=block")
            rows = list(csv.DictReader(io.StringIO(await r.text())))
    people = page.split('id="audit-people"', 1)[1].split("</ul>", 1)[0]
    sargs = page.split('id="audit-sargs"', 1)[1].split("</ul>", 1)[0]
    assert page.index('id="audit-people"') < page.index('id="audit-sargs"')
    assert re.findall(r'data-kind="([a-z-]+)"', people)[:3] == [
        "post-override", "reject", "request"]  # newest first, people only
    assert "peter noraidīja lietotāja anna pieprasījumu platformai TikTok: not now" in people
    assert "anna publicēja platformā X (Twitter), neskatoties uz: Personas dati " \
           "(ar pamatojumu): “public figure&#39;s official number”." in people
    runs = re.findall(r'data-kind="(block|warn)" data-count="(\d+)"', sargs)
    assert runs == [("block", "1"), ("warn", "1"), ("block", "4")]
    assert "Sargs bloķēja lietotāju cora platformā X (Twitter): Jūsu lomas piekļuve." in sargs
    assert "(4 reizes)" in sargs
    assert "text_hash" in sargs or "text_hash" in people  # the stored details, folded away
    assert ">role<" not in page
    assert "personal-data." not in page
    assert len(rows) == 5  # the export is not collapsed

"""Issue 12: a PAC file that can fail closed. The file the real service serves is run in
a JavaScript engine (node, with the standard PAC helpers) for catalog and other hosts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from proxy.service.app import create_app
from proxy.settings import Settings

NODE = shutil.which("node")  # ./scripts/test installs Debian's nodejs where missing
EVAL = Path(__file__).with_name("pac_eval.js")
GATEWAYS = ["gw1.example.gov.lv:3128", "gw2.example.gov.lv:3128"]

CATALOG = [
    "https://www.facebook.com/",
    "https://facebook.com/",
    "https://m.facebook.com/groups",
    "https://WWW.FACEBOOK.COM/",
    "https://www.facebook.com./",  # the trailing dot names the same host
    "https://www.facebook.com:8443/",
    "http://x.com/",
    "https://static.xx.fbcdn.net/v.mp4",  # media CDN
    "https://social.vivaldi.net/@ministry",
]
ELSEWHERE = [
    "https://www.bank.lv/",
    "https://evilfacebook.com/",
    "https://facebook.com.evil.example/",
    "https://vivaldi.net/",  # the parent of a catalog host is not in the catalog
    "http://intranet/",
    "http://printer.local/",
]


def routes(pac: str, tmp_path: Path, urls: list[str]) -> list[str]:
    path = tmp_path / "proxy.pac"
    path.write_text(pac)
    assert NODE is not None, "the PAC file runs in node: apt-get install -y nodejs"
    out = subprocess.run([NODE, str(EVAL), str(path), *urls], capture_output=True,
                         text=True, timeout=30, check=True)
    result: list[str] = json.loads(out.stdout)
    return result


async def pac(aiohttp_client: Any, tmp_path: Path, **settings: Any) -> str:
    client: TestClient = await aiohttp_client(create_app(
        Settings(var_dir=tmp_path / "var", gateways=GATEWAYS, **settings)))
    resp = await client.get("/proxy.pac")
    assert resp.status == 200
    return await resp.text()


async def test_fail_closed_sends_catalog_hosts_to_the_gateways_or_nowhere(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    served = await pac(aiohttp_client, tmp_path, pac_fail_closed=True)
    closed = "PROXY gw1.example.gov.lv:3128; PROXY gw2.example.gov.lv:3128; PROXY 127.0.0.1:9"
    assert routes(served, tmp_path, CATALOG) == [closed] * len(CATALOG)
    assert "DIRECT" not in closed
    assert routes(served, tmp_path, ELSEWHERE) == ["DIRECT"] * len(ELSEWHERE)


async def test_by_default_catalog_hosts_fall_back_to_direct(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    served = await pac(aiohttp_client, tmp_path)
    open_route = "PROXY gw1.example.gov.lv:3128; PROXY gw2.example.gov.lv:3128; DIRECT"
    assert routes(served, tmp_path, CATALOG) == [open_route] * len(CATALOG)
    assert routes(served, tmp_path, ELSEWHERE) == ["DIRECT"] * len(ELSEWHERE)

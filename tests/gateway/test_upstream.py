"""The gateway chains to the institution's existing upstream proxy (``upstream_proxy`` →
mitmproxy's ``mode=upstream:URL``): allowed requests leave through it, refused ones never
reach it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from proxy.gateway.addons import mitmproxy_options
from proxy.settings import Settings
from tests.support.gateway import fake_site, running_gateway

USERS = {"anna": ("anna-pw", ["staff"])}
PAGE = {"Accept": "text/html", "Sec-Fetch-Dest": "document"}


def _login() -> dict[str, str]:
    return {"Proxy-Authorization": "Basic " + base64.b64encode(b"anna:anna-pw").decode()}


@dataclass
class Upstream:
    """A minimal HTTP forward proxy (absolute-form requests and CONNECT), loopback only."""

    port: int = 0
    seen: list[str] = field(default_factory=list)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def upstream_proxy() -> AsyncIterator[Upstream]:
    up = Upstream()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, _, rest = head.partition(b"\r\n")
        method, target, version = line.decode().split(" ")
        up.seen.append(f"{method} {target}")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
        else:
            parts = urlsplit(target)
            host, port = parts.hostname or "", str(parts.port or 80)
        if host not in ("127.0.0.1", "localhost"):
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        r2, w2 = await asyncio.open_connection(host, int(port))
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            path = urlsplit(target).path or "/"
            query = urlsplit(target).query
            origin = f"{method} {path}{'?' + query if query else ''} {version}\r\n".encode()
            w2.write(origin + rest)
        await asyncio.gather(_pipe(reader, w2), _pipe(r2, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        server.close()
        await server.wait_closed()


def test_upstream_setting_becomes_mitmproxy_upstream_mode(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, upstream_proxy="http://proxy.example.lv:3128")
    assert mitmproxy_options(settings, tmp_path)["mode"] == ["upstream:http://proxy.example.lv:3128"]
    assert "mode" not in mitmproxy_options(Settings(var_dir=tmp_path), tmp_path)


async def test_allowed_requests_leave_through_the_upstream_proxy(tmp_path: Path) -> None:
    async with fake_site() as site, upstream_proxy() as up, running_gateway(
        tmp_path, site.port, users=USERS,
        options={"mode": [f"upstream:http://127.0.0.1:{up.port}"]},
    ) as gw, aiohttp.ClientSession() as session:
        # LinkedIn is allowed for staff: through the gateway, then the upstream, to the site.
        async with session.get("https://www.linkedin.com/feed/", proxy=gw.proxy_url,
                               proxy_headers=_login(), headers=PAGE,
                               ssl=gw.ssl_context()) as r:
            assert r.status == 200
            assert "Hello from www.linkedin.com" in await r.text()
        assert site.paths() == ["/feed/"]
        # mitmproxy opens a tunnel through the upstream to the (test-mapped) origin.
        assert up.seen == [f"CONNECT 127.0.0.1:{site.port}"]
        # TikTok is blocked for staff: the block page, and nothing reaches the upstream.
        before = list(up.seen)
        async with session.get("https://www.tiktok.com/", proxy=gw.proxy_url,
                               proxy_headers=_login(), headers=PAGE,
                               ssl=gw.ssl_context()) as r:
            assert r.status == 403
        assert up.seen == before
        assert site.paths() == ["/feed/"]

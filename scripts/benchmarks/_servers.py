"""Servers the gateway benchmark starts in subprocesses (one core each, not the load's).

    python -m scripts.benchmarks._servers origin PORT TLS_PORT CERT KEY
    python -m scripts.benchmarks._servers proxy bare|access|sargs PORT ORIGIN_PORT CONFDIR LOGFILE
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path
from typing import Any

PAGE = (b"<!doctype html><html><head><title>feed</title></head><body>"
        + b"<p>post</p>" * 200 + b"</body></html>")


async def origin(port: int, tls_port: int, cert: str, key: str) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await web.TCPSite(runner, "127.0.0.1", tls_port, ssl_context=ctx).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


class MapToOrigin:
    """Both modes: send catalog-looking hosts to the local origin (same cost bare and Sargs)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, flow: Any) -> None:
        if flow.response or flow.request.host == "127.0.0.1":
            return
        host_header = flow.request.host_header
        flow.request.scheme, flow.request.host, flow.request.port = "http", "127.0.0.1", self.port
        flow.request.host_header = host_header


async def proxy(mode: str, port: int, origin_port: int, confdir: str, logfile: str) -> None:
    from mitmproxy.options import Options
    from mitmproxy.tools.dump import DumpMaster

    opts = Options(listen_host="127.0.0.1", listen_port=port, confdir=confdir)
    master = DumpMaster(opts, with_termlog=False, with_dumper=False)
    addons: list[object] = []
    if mode in ("sargs", "access"):
        from proxy.gateway import decisionlog
        from proxy.gateway.addons import make_addons
        from proxy.gateway.identity import MemoryDirectory
        from proxy.runtime import PolicyState
        from proxy.settings import ROOT, Settings

        decisionlog.configure(Path(logfile))
        settings = Settings(gateway_metrics_port=0, var_dir=Path(confdir))
        state = PolicyState(ROOT / "policies" / "institutions" / "example")
        directory = MemoryDirectory({"anna": ("anna-pw", ["staff"])})
        addons = make_addons(settings, state, directory=directory)
        if mode == "access":  # the access addon alone (identity, decision, log)
            addons = addons[:1]
    master.addons.add(*addons, MapToOrigin(origin_port))
    opts.update(connection_strategy="lazy", ssl_insecure=True)
    task = asyncio.create_task(master.run())
    proxyserver: Any = master.addons.get("proxyserver")
    for _ in range(1000):
        if proxyserver.listen_addrs() and (Path(confdir) / "mitmproxy-ca-cert.pem").exists():
            break
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await task


def main_servers(argv: list[str]) -> None:
    if argv[0] == "origin":
        asyncio.run(origin(int(argv[1]), int(argv[2]), argv[3], argv[4]))
    else:
        asyncio.run(proxy(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5]))


if __name__ == "__main__":
    main_servers(sys.argv[1:])

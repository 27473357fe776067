"""Servers the gateway benchmark starts in subprocesses (one core each, not the load's).

    python -m scripts.benchmarks._servers origin PORT TLS_PORT CERT KEY
    python -m scripts.benchmarks._servers proxy MODE PORT ORIGIN_PORT TLS_PORT CONFDIR LOGFILE

The origin also plays the Sargs service for the gateway's sync (grant bundle, its event
stream, event delivery), so the deployed add-ons run with every part switched on.

Proxy modes (``MODES``): ``bare`` (mitmproxy, no Sargs addon), ``access`` (the access
add-on and the decision log: identity, decision, its line, refusals), ``sargs-noinject``
(every add-on with ``sargs_inject=false``) and ``sargs`` (every add-on as ``sargs run``
deploys it: access, sync, injection, post checks, metrics). Every mode gets the same
``MapToOrigin`` addon. Non-catalog TLS (the origin's TLS port) is tunnelled in every mode:
Sargs decides that per ClientHello, bare mitmproxy is told so with ``ignore_hosts``
(left to its default it would intercept, a different and heavier job).
SIGTERM stops a proxy the way ``sargs run`` stops (``master.shutdown()``), so the
decision log is flushed on exit.

``BENCH_TIME_SCALE=N`` (the instruction counts, run under valgrind about 50 times slower)
stretches the event spool's flush interval by N, so a batch holds about as many events
as at full speed instead of N times fewer (each batch's fixed cost, a thread hop, a
write, an fsync and a POST to the service, would weigh N times more per request); and
polls the policy files once an hour instead of every second (a poll costs ~3 M
instructions, 0.04 % of a core at full speed, but a whole request's worth under valgrind,
landing in a measured run or not by chance).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

PAGE = (b"<!doctype html><html><head><title>feed</title></head><body>"
        + b"<p>post</p>" * 200 + b"</body></html>")
MODES = ("bare", "access", "sargs-noinject", "sargs")
USERS = {"anna": ("anna-pw", ["staff"])}
TIME_SCALE = float(os.environ.get("BENCH_TIME_SCALE", "1"))


async def origin(port: int, tls_port: int, cert: str, key: str) -> None:
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    async def bundle(request: web.Request) -> web.Response:
        return web.json_response(
            {"version": 1, "policy": "bench", "digest": "bench", "grants": []},
            headers={"ETag": '"1"'},
        )

    async def bundle_events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'event: version\ndata: {"version": 1}\n\n')
        while True:
            await asyncio.sleep(15)
            await response.write(b": heartbeat\n\n")

    async def events(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        return web.json_response({"accepted": len(data.get("events", []))})

    app = web.Application()
    app.router.add_get("/api/v1/bundle", bundle)
    app.router.add_get("/api/v1/bundle/events", bundle_events)
    app.router.add_post("/api/v1/events", events)
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await web.TCPSite(runner, "127.0.0.1", tls_port, ssl_context=ctx).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


class MapToOrigin:
    """Every mode: send catalog-looking hosts to the local origin (same cost bare and Sargs)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, flow: Any) -> None:
        if flow.response or flow.request.host == "127.0.0.1":
            return
        host_header = flow.request.host_header
        flow.request.scheme, flow.request.host, flow.request.port = "http", "127.0.0.1", self.port
        flow.request.host_header = host_header


def sargs_addons(mode: str, origin_port: int, confdir: str, logfile: str) -> list[object]:
    from proxy.gateway import decisionlog
    from proxy.gateway.addons import make_addons
    from proxy.gateway.identity import MemoryDirectory
    from proxy.runtime import PolicyState
    from proxy.settings import ROOT, Settings

    if TIME_SCALE != 1:
        from proxy.gateway import sync

        sync.FLUSH_INTERVAL *= TIME_SCALE
    decisionlog.configure(Path(logfile))  # as `sargs run` with SARGS_LOG_FILE
    settings = Settings(
        gateway_metrics_port=0, var_dir=Path(confdir),
        service_url=f"http://127.0.0.1:{origin_port}",
    )
    state = PolicyState(ROOT / "policies" / "institutions" / "example")
    directory = MemoryDirectory(USERS)
    if mode == "access":
        from proxy.gateway.access import Access

        return [Access(state, directory=directory),
                decisionlog.DecisionLog(lambda: state.current.version)]
    return make_addons(settings, state, directory=directory, sync=True)


async def proxy(
    mode: str, port: int, origin_port: int, tls_port: int, confdir: str, logfile: str
) -> None:
    from mitmproxy.options import Options
    from mitmproxy.tools.dump import DumpMaster

    if mode not in MODES:
        raise SystemExit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    opts: Any = Options(listen_host="127.0.0.1", listen_port=port, confdir=confdir)
    master: Any = DumpMaster(opts, with_termlog=False, with_dumper=False)
    addons = [] if mode == "bare" else sargs_addons(mode, origin_port, confdir, logfile)
    master.addons.add(*addons, MapToOrigin(origin_port))
    opts.update(connection_strategy="lazy", ssl_insecure=True)
    if mode == "bare":
        opts.update(ignore_hosts=[rf"^127\.0\.0\.1:{tls_port}$"])
    if mode != "bare":  # the origin is on loopback: inside, so IT lists it (as tests do)
        opts.update(sargs_allowed_upstreams=[f"127.0.0.1:{origin_port}",
                                             f"127.0.0.1:{tls_port}"])
    if mode == "sargs-noinject":
        opts.update(sargs_inject=False)
    if mode != "bare" and TIME_SCALE != 1:
        opts.update(sargs_reload_interval=3600.0)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, master.shutdown)
    task = asyncio.create_task(master.run())
    proxyserver: Any = master.addons.get("proxyserver")
    for _ in range(1000):
        if proxyserver.listen_addrs() and (Path(confdir) / "mitmproxy-ca-cert.pem").exists():
            break
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    try:
        await task
    finally:
        await proxyserver.servers.update([])


def main_servers(argv: list[str]) -> None:
    if argv[0] == "origin":
        asyncio.run(origin(int(argv[1]), int(argv[2]), argv[3], argv[4]))
    else:
        asyncio.run(proxy(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), argv[5], argv[6]))


if __name__ == "__main__":
    main_servers(sys.argv[1:])

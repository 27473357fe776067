"""Gateway throughput for an allowed platform HTML page, content-script injection on vs off.

    ./scripts/bench injection            (BENCH_SECONDS=10 for longer runs)

Same run, loopback only: an origin (aiohttp, one process) serves a 60 kB platform-like
page with a nonce-based CSP; the gateway (mitmproxy with every Sargs addon, the example
policy, a communicator logged in with Basic auth, one process each) runs twice, with
``sargs_inject`` off and on, both started before any measurement; load comes from ``wrk``
(absolute-form requests to the proxy, as browsers send plain-HTTP proxy requests) when
installed, else from an aiohttp client. After a warm-up, ``BENCH_ROUNDS`` (default 5)
rounds of ``BENCH_SECONDS`` (default 4) each, the order alternating. Prints medians and
spread of requests/s, p50/p99 latency and gateway CPU per request, and the cost of
injection within each round.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.benchmarks._servers import MapToOrigin
from scripts.benchmarks._wrk import cpu_seconds, free_port, run_wrk

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
CONNECTIONS = 8
USER, PASSWORD = "bench", "bench-pw"
URL = "http://x.com/home"
HEADERS = {
    "Host": "x.com",
    "Accept": "text/html,application/xhtml+xml",
    "Sec-Fetch-Dest": "document",
    "Accept-Language": "lv",
    "Proxy-Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
}
NONCE = "YmVuY2htYXJrLW5vbmNl"
PAGE = (
    "<!DOCTYPE html><html lang=lv><head><meta charset=utf-8><title>Home / X</title>"
    f"<script nonce={NONCE}>window.__app = 1;</script></head><body>"
    + "<article><p>Ziņa no Rīgas: jaunā bibliotēka atvērta 😀</p></article>" * 900
    + "</body></html>"
).encode()
CSP = f"script-src 'nonce-{NONCE}' 'strict-dynamic'; object-src 'none'; base-uri 'none'"


# --- the servers (subprocesses) ---------------------------------------------------------------


async def _origin(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, headers={
            "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def _gateway(port: int, origin_port: int, confdir: str, inject: bool) -> None:
    import logging

    from mitmproxy.options import Options
    from mitmproxy.tools.dump import DumpMaster

    from proxy.gateway.addons import make_addons
    from proxy.gateway.identity import MemoryDirectory
    from proxy.runtime import PolicyState
    from proxy.settings import ROOT, Settings

    logging.getLogger("sargs").setLevel(logging.WARNING)  # decision lines: not measured here
    logging.getLogger("sargs").propagate = False
    opts: Any = Options(listen_host="127.0.0.1", listen_port=port, confdir=confdir)
    master: Any = DumpMaster(opts, with_termlog=False, with_dumper=False)
    settings = Settings(var_dir=Path(confdir), gateway_metrics_port=0)
    state = PolicyState(ROOT / "policies" / "institutions" / "example")
    directory = MemoryDirectory({USER: (PASSWORD, ["communicator"])})
    master.addons.add(*make_addons(settings, state, directory=directory), MapToOrigin(origin_port))
    # the origin is on loopback: inside, so IT lists it (as the gateway benchmark does)
    opts.update(connection_strategy="lazy", sargs_inject=inject,
                sargs_allowed_upstreams=[f"127.0.0.1:{origin_port}"])
    task = asyncio.create_task(master.run())
    proxyserver: Any = master.addons.get("proxyserver")
    for _ in range(1000):
        if proxyserver.listen_addrs():
            break
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await task


@contextlib.contextmanager
def _spawn(*args: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.benchmarks.injection", *args],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"server {args[0]} did not start")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- load -------------------------------------------------------------------------------------


def _fetch_once(proxy_port: int) -> bytes:
    import urllib.request

    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy_port}"})
    )
    request = urllib.request.Request(URL, headers=HEADERS)
    with opener.open(request, timeout=10) as response:
        body: bytes = response.read()
        return body


def _wrk(proxy_port: int, seconds: float) -> dict[str, float]:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items())
    run = run_wrk(proxy_port, f'wrk.method = "GET"\nwrk.path = "{URL}"\n{lines}\n',
                  seconds, CONNECTIONS)
    if run.non_2xx or run.socket_errors:
        raise RuntimeError(f"wrk run failed:\n{run.report}")
    return {"rps": run.rps, "p50": run.p50_ms, "p99": run.p99_ms,
            "requests": float(run.requests)}


async def _aiohttp_load(proxy_port: int, seconds: float) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            async with session.get(URL, proxy=f"http://127.0.0.1:{proxy_port}",
                                   headers=HEADERS) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50": cuts[49], "p99": cuts[98],
            "requests": float(len(latencies))}


def _measure(proxy_port: int, pid: int, seconds: float = SECONDS) -> dict[str, float]:
    """One run of load; adds ``cpu_us``: the gateway process's CPU time per request."""
    before = cpu_seconds(pid)
    if shutil.which("wrk"):
        result = _wrk(proxy_port, seconds)
    else:
        result = asyncio.run(_aiohttp_load(proxy_port, seconds))
    result["cpu_us"] = (cpu_seconds(pid) - before) / max(1.0, result["requests"]) * 1e6
    return result


def main() -> int:
    from scripts.benchmarks.gateway import _spread

    modes = ("off", "on")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="sargs-bench-") as tmp_name, \
            contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        origin_port = free_port()
        stack.enter_context(_spawn("origin", str(origin_port)))
        ports, pids = {}, {}
        for mode in modes:  # both gateways up before any measurement
            ports[mode] = free_port()
            confdir = tmp / f"mitmproxy-{mode}"
            confdir.mkdir()
            pids[mode] = stack.enter_context(
                _spawn("gateway", str(ports[mode]), str(origin_port), str(confdir), mode)).pid
        for mode in modes:
            body = _fetch_once(ports[mode])
            injected = b"/__sargs/static/compose-guard.js" in body
            if injected != (mode == "on"):
                print(f"injection {mode} but page injected={injected}", file=sys.stderr)
                return 1
            for _ in range(50):  # warm-up: connections, caches, login cache
                _fetch_once(ports[mode])
            _measure(ports[mode], pids[mode], seconds=1)
        for round_no in range(ROUNDS):  # off on, on off, ...: drift cancels
            for mode in modes if round_no % 2 == 0 else modes[::-1]:
                results[mode].append(_measure(ports[mode], pids[mode]))
    tool = "wrk" if shutil.which("wrk") else "aiohttp"
    print(f"page {len(PAGE) // 1024} kB with a nonce CSP, {CONNECTIONS} connections, "
          f"{ROUNDS} rounds × {SECONDS:g} s each (order alternating), load from {tool}; "
          "medians (min–max)")
    for mode in modes:
        rs = results[mode]
        print(f"  injection {mode:3}  {_spread([r['rps'] for r in rs], '.0f')} requests/s   "
              f"p50 {_spread([r['p50'] for r in rs], '.2f')} ms   "
              f"p99 {_spread([r['p99'] for r in rs], '.2f')} ms   "
              f"CPU {_spread([r['cpu_us'] for r in rs], '.0f')} µs/request")
    pairs = list(zip(results["off"], results["on"], strict=True))
    rps_cost = [100 * (1 - on["rps"] / off["rps"]) for off, on in pairs]
    cpu_cost = [100 * (on["cpu_us"] / off["cpu_us"] - 1) for off, on in pairs]
    print(f"  injection costs {_spread(rps_cost, '.1f')}% of throughput (wall clock), "
          f"{_spread(cpu_cost, '.1f')}% more gateway CPU per request (within each round)")
    return 0


def _serve(argv: list[str]) -> None:
    if argv[0] == "origin":
        asyncio.run(_origin(int(argv[1])))
    else:
        asyncio.run(_gateway(int(argv[1]), int(argv[2]), argv[3], argv[4] == "on"))


if __name__ == "__main__":
    _serve(sys.argv[1:])

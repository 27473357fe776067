"""Gateway throughput and latency: bare mitmproxy vs mitmproxy with the Sargs addons.

Like with like, on loopback: every proxy in its own subprocess (``_servers.py``), all
started before any measurement and driven by the same load with the same settings; the
origin (which also plays the Sargs service for the gateway's sync) in another process.

Modes (``_servers.MODES``): ``bare`` mitmproxy; ``access`` (the access addon alone);
``sargs-noinject`` (the deployed add-ons, injection off); ``sargs`` (the deployed add-ons:
access, sync with its event spool, injection, post checks, metrics, decision log to a
file). Issue 2's comparison is ``sargs`` vs ``bare``; injection's own cost is the
``sargs`` vs ``sargs-noinject`` difference (issue 3; see also ``./scripts/bench
injection``).

Scenarios:

- allowed: a staff user's page load on an allowed platform (www.linkedin.com), plain-HTTP
  proxying with a Basic login (decision, decision log, injection into the page);
- blocked: the same user's page load on a blocked platform (www.tiktok.com): Sargs
  answers with the block page (and spools an event), bare mitmproxy forwards it;
- tunnel: HTTPS to a non-catalog host (127.0.0.1, its own certificate) over CONNECT
  with the Basic login: every mode tunnels it untouched (bare via ``ignore_hosts``; Sargs
  asks for an identity at every CONNECT and relays to loopback only because the origin's
  ports are listed in ``sargs_allowed_upstreams``).

Every page request carries the same headers, ``Proxy-Authorization`` included (bare
mitmproxy forwards it, Sargs consumes it). Page loads use wrk (absolute-URL path via a
Lua script; one thread, ``CONNECTIONS`` keep-alive connections); the tunnel uses an aiohttp
client (wrk cannot CONNECT). After a warm-up of every mode, each scenario is measured in
``BENCH_ROUNDS`` rounds (default 5) of ``BENCH_SECONDS`` (default 4) per mode; the
order alternates (bare sargs sargs-noinject access, then the reverse, ...) so drift on a
busy machine cancels and bare and sargs are always measured back to back.
``BENCH_SCENARIOS=allowed,blocked`` runs only those scenarios. Reported: medians with the
spread (min–max) of requests/s, p50/p99 latency, the proxy's CPU time per request read
from ``/proc/PID/stat`` (fair when other work shares the machine), and each mode's ratio
to bare within each round (median and spread over rounds).

Instruction counts (the repeatable measure; first, unless ``BENCH_VALGRIND=0``): wall
clock and CPU time move by ±20 % on a shared 2-core machine, more than the 10 % the target
asks to resolve. So ``bare`` and ``sargs`` (``BENCH_COUNT_MODES=bare,access,...`` for
others) also run under ``valgrind --tool=callgrind --instr-atstart=no`` (side by side:
counts do not depend on sharing the CPU), and ``callgrind_control`` switches counting on
around two measured runs per scenario after a warm-up: ``COUNT_CONNECTIONS`` connections
opened one after the other, each with ``COUNT_SHORT`` then ``COUNT_LONG`` requests sent
one at a time. The difference of the two totals ÷ the difference in requests is the
proxy's instructions per request on a kept-alive connection, free of per-connection and
fixed costs; what is left of the short run is the cost of a connection (accept, CONNECT,
ClientHello, close). Runs repeat within ~0.2 % (allowed, blocked); the tunnel's split
between per request and per connection moves more (how TLS bytes fall into reads), its
sum (a new connection with one request) less. Under valgrind the proxies run ~50× slower,
so timers that batch work by wall-clock time are stretched (``BENCH_TIME_SCALE``, see
``_servers.py``) and counting goes on ``SETTLE_SECONDS`` after a run's last request, so
the event spool's flush and delivery of the run's events are counted with it. ``bare ÷
sargs`` instructions per request is the 1-core throughput ratio when kernel time per
request is alike (the deployed add-ons add one ``write(2)`` of the decision log per event
loop turn, and for blocked pages an fsync'd spool write per batch; bare forwards blocked
pages upstream: one more connection's send and receive). ``BENCH_VALGRIND=only``: counts only;
``BENCH_CALLGRIND_DIR=DIR`` keeps the dumps for ``callgrind_annotate``. About 2–3 min.

Target (issue 11, re-based from issue 2's 95 % so that plain code meets it): Sargs at least
90 % of bare mitmproxy's throughput for each scenario,
judged by instructions per request (and for the tunnel also per new connection) where
counted, else by CPU per request, and shown by wall-clock requests/s too.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.benchmarks._callgrind import Callgrind
from scripts.benchmarks._wrk import cpu_seconds, free_port, run_wrk

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
WARMUP_SECONDS = 2.0
TARGET = 0.90
"""Sargs's share of bare mitmproxy's throughput (instructions per request) to reach."""
CONNECTIONS = 10
MODES = ("bare", "access", "sargs-noinject", "sargs")
LOGIN = "Basic " + base64.b64encode(b"anna:anna-pw").decode()
VALGRIND = os.environ.get("BENCH_VALGRIND", "1")
"""``0``: wall clock only; ``only``: instruction counts only; else both."""
KEEP_DUMPS = Path(os.environ["BENCH_CALLGRIND_DIR"]) if os.environ.get(
    "BENCH_CALLGRIND_DIR") else None
"""Where to copy the callgrind dumps (for ``callgrind_annotate``); default: not kept."""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int = 0
    cpu_us: float = 0.0
    """CPU time the proxy process spent per request (robust on a busy machine)."""


def measured(pid: int, run: Callable[[], Result]) -> Result:
    before = cpu_seconds(pid)
    result = run()
    result.cpu_us = (cpu_seconds(pid) - before) / max(1, result.requests) * 1e6
    return result


def _self_signed(directory: Path) -> tuple[str, str]:
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench origin")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "origin.pem", directory / "origin-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _start(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.benchmarks._servers", *args], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{args[0]} server did not start")
    return proc


def wrk(proxy_port: int, url: str, host: str, seconds: float) -> Result:
    lua = (
        f'wrk.method = "GET"\nwrk.path = "{url}"\n'
        f'wrk.headers["Host"] = "{host}"\n'
        'wrk.headers["Accept"] = "text/html,application/xhtml+xml"\n'
        'wrk.headers["Sec-Fetch-Dest"] = "document"\n'
        f'wrk.headers["Proxy-Authorization"] = "{LOGIN}"\n'
    )
    run = run_wrk(proxy_port, lua, seconds, CONNECTIONS)
    return Result(run.rps, run.p50_ms, run.p99_ms, run.requests)


async def _tunnel(proxy_port: int, origin_tls_port: int, seconds: float) -> Result:
    import aiohttp

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                async with session.get(f"https://127.0.0.1:{origin_tls_port}/",
                                       proxy=f"http://127.0.0.1:{proxy_port}",
                                       proxy_headers={"Proxy-Authorization": LOGIN}) as r:
                    await r.read()
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return Result(len(latencies) / elapsed, q[49] * 1e3, q[98] * 1e3, len(latencies))


def _spread(values: list[float], fmt: str) -> str:
    """``median (min–max)``."""
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{med:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


MEASURE_ORDER = ("bare", "sargs", "sargs-noinject", "access")
"""Bare and the deployed add-ons next to each other in every round (the pair that matters)."""


def _order(round_no: int) -> tuple[str, ...]:
    return MEASURE_ORDER if round_no % 2 == 0 else MEASURE_ORDER[::-1]


def _run_scenario(
    run: Callable[[int], Result], ports: dict[str, int], pids: dict[str, int]
) -> dict[str, list[Result]]:
    for mode in MODES:  # warm-up: login cache, connections, TLS, JIT-free but cache-warm
        run(ports[mode])
    results: dict[str, list[Result]] = {mode: [] for mode in MODES}
    for round_no in range(ROUNDS):
        for mode in _order(round_no):
            results[mode].append(measured(pids[mode], functools.partial(run, ports[mode])))
    return results


def _report(name: str, results: dict[str, list[Result]]) -> dict[str, tuple[float, float]]:
    """Print one scenario's rows; return mode → (CPU ratio, req/s ratio) vs bare: the
    medians over rounds of the ratios within each round (bare and the mode measured in the
    same round, so drift of a busy machine cancels)."""
    ratios = {}
    for mode in MODES:
        rs = results[mode]
        cpu = statistics.median(r.cpu_us for r in rs)
        cpu_ratios = [b.cpu_us / r.cpu_us if r.cpu_us else 0.0
                      for b, r in zip(results["bare"], rs, strict=True)]
        rps_ratios = [r.rps / b.rps if b.rps else 0.0
                      for b, r in zip(results["bare"], rs, strict=True)]
        ratios[mode] = (statistics.median(cpu_ratios), statistics.median(rps_ratios))
        print(f"{name:<9}{mode:<15}{_spread([r.rps for r in rs], '.0f'):>19}"
              f"{_spread([r.p50_ms for r in rs], '.1f'):>20}"
              f"{_spread([r.p99_ms for r in rs], '.1f'):>21}"
              f"{_spread([r.cpu_us for r in rs], '.0f'):>21}"
              f"{1e6 / cpu if cpu else 0:>8.0f}"
              f"{_spread([100 * x for x in cpu_ratios], '.0f'):>18}"
              f"{_spread([100 * x for x in rps_ratios], '.0f'):>18}")
    return ratios


# --- instruction counts under callgrind ------------------------------------------------------

COUNT_MODES = tuple(os.environ.get("BENCH_COUNT_MODES", "bare,sargs").split(","))
COUNT_CONNECTIONS = 4
"""Connections per measured run, one after the other (sequential: deterministic)."""
COUNT_SHORT, COUNT_LONG = 5, 30
"""Requests per connection in the two measured runs; their difference is the per-request
cost, free of per-connection and fixed costs (instrumentation switches, the first call)."""
COUNT_WARMUP = 40
TIME_SCALE = 20.0
"""Sargs' wall-clock batching timers stretched this much under valgrind (``_servers``):
the event spool is flushed every 4 s instead of 0.2 s, about as many events per batch
as at full speed."""
SETTLE_SECONDS = 0.2 * TIME_SCALE + 1.5
"""Counting goes on this long after a run's last request: work the run deferred (the
spool's flush and delivery) is counted with it."""
IDLE_SECONDS = 3.0


@dataclass
class Counted:
    """Instructions the proxy process executed (callgrind ``Ir``)."""

    per_request: float
    per_connection: float
    """Beyond its requests: accept, CONNECT, the ClientHello, TLS bytes, close."""
    idle_per_second: float
    """Background work (timers) while no request is served: should be ~0."""


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


def _page_request(url: str, host: str) -> bytes:
    """The request wrk sends (same headers, the Basic login included)."""
    return (f"GET {url} HTTP/1.1\r\nHost: {host}\r\n"
            "Accept: text/html,application/xhtml+xml\r\nSec-Fetch-Dest: document\r\n"
            f"Proxy-Authorization: {LOGIN}\r\n\r\n").encode()


async def _fixed_load(proxy_port: int, scenario: str, origin_tls: int,
                      connections: int, per_connection: int) -> None:
    """``connections`` connections one after the other, each with ``per_connection``
    requests in sequence (deterministic: the proxy never sees two at once)."""
    import ssl

    for _ in range(connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
        if scenario == "tunnel":
            target = f"127.0.0.1:{origin_tls}"
            writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
                         f"Proxy-Authorization: {LOGIN}\r\n\r\n".encode())
            if await _read_response(reader) != 200:
                raise RuntimeError("CONNECT refused")
            tls = ssl.create_default_context()
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
            await writer.start_tls(tls)
            request = f"GET / HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
        elif scenario == "allowed":
            request = _page_request("http://www.linkedin.com/feed/", "www.linkedin.com")
        else:
            request = _page_request("http://www.tiktok.com/", "www.tiktok.com")
        for _ in range(per_connection):
            writer.write(request)
            await _read_response(reader)
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def _per_connection(counted: Counted, requests: int) -> float:
    """Instructions for a connection carrying ``requests`` requests."""
    return counted.per_connection + requests * counted.per_request


def _connections(scenario: str) -> int:
    """Tunnelled requests are cheap and their connections are what differs: more of them.
    How the bytes fall into reads varies from run to run (and so the split between per
    request and per connection: ±10 %); whole connections vary less, so the tunnel is
    judged by those."""
    return COUNT_CONNECTIONS * 4 if scenario == "tunnel" else COUNT_CONNECTIONS


def _count_scenario(proxy: Callgrind, port: int, scenario: str, origin_tls: int) -> Counted:
    def load(connections: int, per_connection: int) -> Callable[[], None]:
        return lambda: asyncio.run(
            _fixed_load(port, scenario, origin_tls, connections, per_connection))

    load(COUNT_WARMUP // 10, 10)()
    time.sleep(SETTLE_SECONDS)  # the warm-up's deferred work, not counted
    idle, idle_s = proxy.count(lambda: time.sleep(IDLE_SECONDS))
    conns = _connections(scenario)
    short, _ = proxy.count(load(conns, COUNT_SHORT), SETTLE_SECONDS)
    long, _ = proxy.count(load(conns, COUNT_LONG), SETTLE_SECONDS)
    per_request = (long - short) / (conns * (COUNT_LONG - COUNT_SHORT))
    per_connection = short / conns - COUNT_SHORT * per_request
    return Counted(per_request, per_connection, idle / idle_s)


def count_instructions(origin_port: int, origin_tls: int, tmp: Path,
                       scenarios: list[str]) -> dict[str, dict[str, Counted]]:
    """Per scenario and mode: the proxy's instructions per request and per connection."""
    proxies: dict[str, Callgrind] = {}
    ports: dict[str, int] = {}
    out = tmp / "callgrind"
    out.mkdir()
    try:
        for mode in COUNT_MODES:
            ports[mode] = free_port()
            confdir = tmp / f"count-{mode}"
            confdir.mkdir()
            proxies[mode] = Callgrind(mode, out, "scripts.benchmarks._servers", [
                "proxy", mode, str(ports[mode]), str(origin_port), str(origin_tls),
                str(confdir), str(tmp / f"count-decisions-{mode}.jsonl")],
                env={"BENCH_TIME_SCALE": str(TIME_SCALE)})
        for proxy in proxies.values():
            proxy.ready()

        def one_mode(mode: str) -> dict[str, Counted]:
            return {name: _count_scenario(proxies[mode], ports[mode], name, origin_tls)
                    for name in scenarios}

        # Instruction counts do not depend on sharing the CPU: the modes run side by side.
        with concurrent.futures.ThreadPoolExecutor(len(proxies)) as pool:
            by_mode = dict(zip(proxies, pool.map(one_mode, proxies), strict=True))
        if KEEP_DUMPS:
            for mode in proxies:
                kept = KEEP_DUMPS / f"callgrind.{mode}"
                kept.mkdir(parents=True, exist_ok=True)
                for dump in out.glob(f"callgrind.{mode}.*"):
                    shutil.copy(dump, kept / dump.name)
    finally:
        for proxy in proxies.values():
            proxy.stop()
    return {name: {mode: by_mode[mode][name] for mode in by_mode} for name in scenarios}


def report_counts(counts: dict[str, dict[str, Counted]]) -> None:
    """Millions of instructions; ratios bare ÷ this mode (1-core throughput vs bare)."""
    print(f"{'scenario':<9}{'proxy':<15}{'Minstr/request':>15}{'Minstr/connection':>18}"
          f"{'bare/this':>11}{'(new conn)':>11}{'idle Minstr/s':>15}")
    for name, by_mode in counts.items():
        bare = by_mode.get("bare")
        for mode, c in by_mode.items():
            ratio = first = "-"
            if bare is not None:
                ratio = f"{bare.per_request / c.per_request:.1%}"
                new_conn = bare.per_request + bare.per_connection
                first = f"{new_conn / (c.per_request + c.per_connection):.1%}"
            print(f"{name:<9}{mode:<15}{c.per_request / 1e6:>15.3f}"
                  f"{c.per_connection / 1e6:>18.3f}{ratio:>11}{first:>11}"
                  f"{c.idle_per_second / 1e6:>15.2f}")
    print("per request: steady state on a kept-alive connection; per connection: what a "
          "connection costs beyond its requests; (new conn) = a new connection with one "
          "request; idle: background work per second without requests (counted in neither)")


def wall_clock(tmp_path: Path, origin_port: int, origin_tls: int,
               wanted: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """The wrk/aiohttp rounds of every mode; prints the table, returns the ratios."""
    print(f"wall clock: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{ROUNDS} rounds × {SECONDS:g} s per mode and scenario (order alternating), "
          f"{CONNECTIONS} connections; medians (min–max)")
    procs: list[subprocess.Popen[str]] = []
    ports, pids, logs = {}, {}, {}
    served = dict.fromkeys(MODES, 0)
    all_ratios: dict[str, dict[str, tuple[float, float]]] = {}
    try:
        for mode in MODES:
            ports[mode] = free_port()
            confdir = tmp_path / mode
            confdir.mkdir()
            logs[mode] = tmp_path / f"decisions-{mode}.jsonl"
            procs.append(_start("proxy", mode, str(ports[mode]), str(origin_port),
                                str(origin_tls), str(confdir), str(logs[mode])))
            pids[mode] = procs[-1].pid

        def counted(url: str, host: str) -> Callable[[int], Result]:
            def run(port: int) -> Result:
                result = wrk(port, url, host, SECONDS)
                mode = next(m for m, p in ports.items() if p == port)
                served[mode] += result.requests
                return result
            return run

        scenarios: dict[str, Callable[[int], Result]] = {
            "allowed": counted("http://www.linkedin.com/feed/", "www.linkedin.com"),
            "blocked": counted("http://www.tiktok.com/", "www.tiktok.com"),
            "tunnel": lambda p: asyncio.run(_tunnel(p, origin_tls, SECONDS)),
        }
        print(f"{'scenario':<9}{'proxy':<15}{'req/s':>19}{'p50 ms':>20}{'p99 ms':>21}"
              f"{'CPU µs/req':>21}{'1-core':>8}{'% bare (CPU)':>18}{'% bare (req/s)':>18}")
        for name, run in scenarios.items():
            if name in wanted:
                all_ratios[name] = _report(name, _run_scenario(run, ports, pids))
    finally:
        _stop(procs)
    for mode in MODES[1:]:
        lines = count_log_lines(logs[mode])
        verdict = "none lost" if lines >= served[mode] else "LINES MISSING"
        print(f"decision log ({mode}): {lines:,} lines for {served[mode]:,} page requests "
              f"wrk completed (in-flight ones at each run's end are logged too): {verdict}")
    print("1-core = 1 / (proxy CPU per request): requests/s one core sustains. % bare (CPU) = "
          "bare's CPU per request / this mode's, % bare (req/s) = this mode's req/s / bare's, "
          "each within a round; median (min–max) over rounds")
    return all_ratios


def _stop(procs: list[subprocess.Popen[str]], timeout: float = 15) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    counting = VALGRIND != "0"
    timing = VALGRIND != "only"
    if timing and shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk")
        return 1
    if counting and shutil.which("valgrind") is None:
        print("valgrind is missing (apt-get install -y valgrind): instruction counts skipped")
        counting = False
    wanted = (os.environ["BENCH_SCENARIOS"].split(",") if os.environ.get("BENCH_SCENARIOS")
              else ["allowed", "blocked", "tunnel"])
    counts: dict[str, dict[str, Counted]] = {}
    all_ratios: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cert, key = _self_signed(tmp_path)
        origin_port, origin_tls = free_port(), free_port()
        origin = [_start("origin", str(origin_port), str(origin_tls), cert, key)]
        try:
            if counting:
                print(f"instruction counts (valgrind callgrind, {' and '.join(COUNT_MODES)} "
                      f"side by side): {COUNT_CONNECTIONS} connections ({_connections('tunnel')}"
                      f" for the tunnel) × {COUNT_SHORT} and × {COUNT_LONG} requests, one at "
                      "a time, after a warm-up; per request = the difference of the two runs "
                      "÷ the difference of their request counts", flush=True)
                counts = count_instructions(origin_port, origin_tls, tmp_path, wanted)
                report_counts(counts)
            if timing:
                all_ratios = wall_clock(tmp_path, origin_port, origin_tls, wanted)
        finally:
            _stop(origin)
    for name in wanted:
        parts = []
        if name in counts and {"bare", "sargs"} <= set(counts[name]):
            bare, sargs = counts[name]["bare"], counts[name]["sargs"]
            if name == "tunnel":  # judged by whole connections (see _connections)
                first = _per_connection(bare, 1) / _per_connection(sargs, 1)
                kept = _per_connection(bare, COUNT_LONG) / _per_connection(sargs, COUNT_LONG)
                ratio = min(first, kept)
                parts.append(f"{first:.1%} for a new connection with one request, "
                             f"{kept:.1%} with {COUNT_LONG}")
            else:
                ratio = bare.per_request / sargs.per_request
                parts.append(f"{ratio:.1%} by instructions per request")
        else:
            ratio = 0.0
        if name in all_ratios:
            cpu, rps = all_ratios[name]["sargs"]
            ratio = ratio or cpu
            parts.append(f"{cpu:.0%} by CPU per request, {rps:.0%} by wall-clock req/s")
        if parts:
            verdict = "met" if ratio >= TARGET else "MISSED"
            print(f"target: Sargs ≥ {TARGET:.0%} of bare, {name}: {verdict} "
                  f"({'; '.join(parts)})")
    return 0


def count_log_lines(path: Path) -> int:
    return path.read_text(encoding="utf-8").count("\n") if path.exists() else 0


if __name__ == "__main__":
    raise SystemExit(main())

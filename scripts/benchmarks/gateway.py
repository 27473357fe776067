"""Gateway throughput and latency: bare mitmproxy vs mitmproxy with the Sargs addons.

Like with like, on loopback: every proxy in its own subprocess (``_servers.py``), all
started before any measurement and driven by the same load with the same settings; the
origin (which also plays the Sargs service for the gateway's sync) in another process.

Modes (``_servers.MODES``): ``bare`` mitmproxy; ``access`` (the access addon alone);
``sargs-noinject`` (the deployed chain, injection off); ``sargs`` (the deployed chain:
access, sync with its event spool, injection, post checks, metrics, decision log to a
file). Issue 2's comparison is ``sargs`` vs ``bare``; injection's own cost is the
``sargs`` vs ``sargs-noinject`` difference (issue 3; see also ``./scripts/bench
injection``).

Scenarios:

- allowed: a staff user's page load on an allowed platform (www.linkedin.com), plain-HTTP
  proxying with a Basic login (decision, decision log, injection into the page);
- blocked: the same user's page load on a blocked platform (www.tiktok.com): Sargs
  answers with the block page (and spools an event), bare mitmproxy forwards it;
- tunnel: HTTPS to a non-catalog host (127.0.0.1, its own certificate) over CONNECT:
  every mode tunnels it untouched (bare via ``ignore_hosts``).

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

Target (issue 2): Sargs at least 95% of bare mitmproxy's throughput for each scenario,
judged by CPU per request (1-core capacity) and shown by wall-clock requests/s too.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.benchmarks._wrk import cpu_seconds, run_wrk

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
WARMUP_SECONDS = 2.0
CONNECTIONS = 10
MODES = ("bare", "access", "sargs-noinject", "sargs")
LOGIN = "Basic " + base64.b64encode(b"anna:anna-pw").decode()


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
                                       proxy=f"http://127.0.0.1:{proxy_port}") as r:
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
"""Bare and the deployed chain next to each other in every round (the pair that matters)."""


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


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk")
        return 1
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{ROUNDS} rounds × {SECONDS:g} s per mode and scenario (order alternating), "
          f"{CONNECTIONS} connections; medians (min–max)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cert, key = _self_signed(tmp_path)
        origin_port, origin_tls = _free_port(), _free_port()
        procs = [_start("origin", str(origin_port), str(origin_tls), cert, key)]
        ports, pids, logs = {}, {}, {}
        served = dict.fromkeys(MODES, 0)
        all_ratios: dict[str, dict[str, tuple[float, float]]] = {}
        try:
            for mode in MODES:
                ports[mode] = _free_port()
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
            wanted = os.environ.get("BENCH_SCENARIOS", "").split(",") if os.environ.get(
                "BENCH_SCENARIOS") else list(scenarios)
            for name, run in scenarios.items():
                if name in wanted:
                    all_ratios[name] = _report(name, _run_scenario(run, ports, pids))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for mode in MODES[1:]:
            lines = count_log_lines(logs[mode])
            verdict = "none lost" if lines >= served[mode] else "LINES MISSING"
            print(f"decision log ({mode}): {lines:,} lines for {served[mode]:,} page requests "
                  f"wrk completed (in-flight ones at each run's end are logged too): {verdict}")
    print("1-core = 1 / (proxy CPU per request): requests/s one core sustains. % bare (CPU) = "
          "bare's CPU per request / this mode's, % bare (req/s) = this mode's req/s / bare's, "
          "each within a round; median (min–max) over rounds")
    for name, ratios in all_ratios.items():
        cpu, rps = ratios["sargs"]
        verdict = "met" if cpu >= 0.95 else "MISSED"
        print(f"target: Sargs ≥ 95% of bare, {name}: {verdict} ({cpu:.0%} by CPU per request, "
              f"{rps:.0%} by wall-clock req/s)")
    return 0


def count_log_lines(path: Path) -> int:
    return path.read_text(encoding="utf-8").count("\n") if path.exists() else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Gateway throughput and latency: bare mitmproxy vs mitmproxy with the Sargs addons.

Side by side in one run, on loopback, each proxy in its own subprocess (so the load
generator does not share its core), against a local origin in a third process:

- allowed: a staff user's page load on an allowed platform (www.linkedin.com), through
  plain-HTTP proxying with a Basic login (decision, decision log, injection checks);
- blocked: the same user's page load on a blocked platform (www.tiktok.com): Sargs answers
  with the block page, bare mitmproxy forwards it;
- tunnel (non-catalog host): HTTPS to 127.0.0.1 (its own certificate) over CONNECT:
  Sargs tunnels it untouched, bare mitmproxy intercepts it (its default).

Page loads use wrk (absolute-URL path via a Lua script); the tunnel uses an aiohttp
client (wrk cannot CONNECT). Duration: BENCH_SECONDS (default 5) per measurement.
Target: Sargs at least 95% of bare mitmproxy's requests/s for the allowed page.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
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

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 10
MODES = ("bare", "access", "sargs")
"""bare mitmproxy; the access addon alone; the whole Sargs chain (access, injection,
post checks, metrics)."""
LOGIN = "Basic " + base64.b64encode(b"anna:anna-pw").decode()


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int = 0
    cpu_us: float = 0.0
    """CPU time the proxy process spent per request (robust on a busy machine)."""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Callable[[], Result]) -> Result:
    before = _cpu_seconds(pid)
    result = run()
    result.cpu_us = (_cpu_seconds(pid) - before) / max(1, result.requests) * 1e6
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


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(proxy_port: int, url: str, host: str, seconds: float) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(
            f'wrk.method = "GET"\nwrk.path = "{url}"\n'
            f'wrk.headers["Host"] = "{host}"\n'
            'wrk.headers["Accept"] = "text/html,application/xhtml+xml"\n'
            'wrk.headers["Sec-Fetch-Dest"] = "document"\n'
            f'wrk.headers["Proxy-Authorization"] = "{LOGIN}"\n'
        )
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, int(seconds))}s", "--latency",
             "-s", script, f"http://127.0.0.1:{proxy_port}"],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        ).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99, total)


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


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk")
        return 1
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{SECONDS:g} s per measurement, {CONNECTIONS} connections")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cert, key = _self_signed(tmp_path)
        origin_port, origin_tls = _free_port(), _free_port()
        procs = [_start("origin", str(origin_port), str(origin_tls), cert, key)]
        ports, pids = {}, {}
        try:
            for mode in MODES:
                ports[mode] = _free_port()
                confdir = tmp_path / mode
                confdir.mkdir()
                procs.append(_start("proxy", mode, str(ports[mode]), str(origin_port),
                                    str(confdir), str(tmp_path / "decisions.jsonl")))
                pids[mode] = procs[-1].pid
            scenarios = {
                "allowed page": lambda p: wrk(p, "http://www.linkedin.com/feed/",
                                              "www.linkedin.com", SECONDS),
                "blocked page": lambda p: wrk(p, "http://www.tiktok.com/",
                                              "www.tiktok.com", SECONDS),
                "tunnel": lambda p: asyncio.run(_tunnel(p, origin_tls, SECONDS)),
            }
            print(f"{'scenario':<14}{'proxy':<8}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}"
                  f"{'vs bare':>9}{'CPU µs/req':>12}{'1-core req/s':>14}{'vs bare':>9}")
            ratios: dict[str, float] = {}
            wall: dict[str, float] = {}
            for name, run in scenarios.items():
                for mode in MODES:
                    run(ports[mode])  # warm-up (login cache, TLS, connections)
                results = {
                    mode: measured(pids[mode], lambda mode=mode, run=run: run(ports[mode]))
                    for mode in MODES
                }
                for mode, r in results.items():
                    ratio = r.rps / results["bare"].rps
                    capacity = 1e6 / r.cpu_us if r.cpu_us else 0.0
                    cpu_ratio = results["bare"].cpu_us / r.cpu_us if r.cpu_us else 0.0
                    if mode == "sargs":
                        ratios[name] = cpu_ratio
                        wall[name] = ratio
                    print(f"{name:<14}{mode:<8}{r.rps:>7.0f}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}"
                          f"{ratio:>9.0%}{r.cpu_us:>12.0f}{capacity:>14.0f}{cpu_ratio:>9.0%}")
            verdict = "met" if ratios["allowed page"] >= 0.95 else "MISSED"
            print("1-core req/s = 1 / (proxy CPU per request): what one core sustains; "
                  "on a busy machine this, not wall-clock req/s, is the fair comparison")
            print(f"target: Sargs ≥ 95% of bare for the allowed page: {verdict} "
                  f"({ratios['allowed page']:.0%} by CPU per request, "
                  f"{wall['allowed page']:.0%} by wall-clock req/s)")
            lines = (tmp_path / "decisions.jsonl").read_text().count("\n")
            print(f"decision log lines written by the Sargs proxy: {lines:,}")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Compliance benchmark: engine latency, lexicon scaling, check API throughput.

Run: ``.venv/bin/python -m scripts.benchmarks.compliance`` (``scripts/bench`` calls main()).

- check latency p50/p99 for a 280-character and a 5,000-character draft over the whole
  rule set of the example institution (several different drafts in turn: nothing can
  profit from seeing one draft again);
- the same with every lexicon ten times larger (synthetic terms), and the ratio
  (target < 1.5×);
- ``POST /api/v1/check`` requests/s against an aiohttp hello-world endpoint (target: at
  least half of it). Like with like: each server runs alone in its own subprocess, the
  same way (``web.AppRunner``, no access log), started by this module; one load
  generator (``wrk``, one thread, the same connections and duration) drives both; each
  gets a warm-up run first; then ``ROUNDS`` alternating rounds, and the median and the
  spread (min–max) of the per-round ratio are printed with p50/p99 latencies. The check
  server is the whole service (``create_app``: every middleware, metrics, the store);
  wrk sends 280-character drafts in turn from a set of different ones (the target is
  judged on these). For scale, each round also measures the same service checking short
  clean drafts (no finding): the cost of the service around the engine.

Environment: ``BENCH_SECONDS`` (default 3) per measurement, ``BENCH_ROUNDS`` (default 3).
Without wrk (``apt-get install -y wrk``) the API part is skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from proxy.compliance.config import ComplianceConfig
from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest
from proxy.policy.loader import load
from proxy.policy.model import Policy
from proxy.settings import ROOT
from scripts.benchmarks._wrk import cpu_seconds, run_wrk

EXAMPLE = ROOT / "policies" / "institutions" / "example"
AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 16
DRAFTS = 16
"""Different drafts per length, checked in turn."""

_SENTENCES = [
    "Šodien ministrija atklāj jaunu konsultāciju centru Rīgā, 😀 laipni lūdzam! ",
    "Idag öppnar kommunen ett nytt servicecenter, välkommen på fredag. ",
    "Sot ministria hap një qendër të re shërbimi për qytetarët. ",
    "Read more at https://www.example.gov.lv/jaunumi about decision Nr. 1-2/345. ",
    "Some say the idiot who wrote this should call 29123456 or write jane@example.com. ",
    "The staff Christmas party and the vote for the best photo are on Friday. ",
]


def _draft(length: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(map(len, parts)) < length:
        parts.append(rng.choice(_SENTENCES))
    return "".join(parts)[:length]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _latency(engine: Engine, texts: list[str], rounds: int) -> tuple[float, float]:
    requests = [CheckRequest(text=t, account="official", at=AT, lang="lv") for t in texts]
    for request in requests:
        engine.check(request, "bench")
    samples = []
    for i in range(rounds):
        request = requests[i % len(requests)]
        start = time.perf_counter()
        engine.check(request, "bench")
        samples.append((time.perf_counter() - start) * 1000)
    return _percentiles(samples)


def _inflated(policy: Policy, factor: int) -> Policy:
    """The policy with every lexicon ``factor`` times larger (synthetic, never matching)."""
    rng = random.Random(7)
    data: dict[str, Any] = policy.compliance.model_dump(mode="json")
    for rule in data["rules"].values():
        for key in ("terms", "exceptions"):
            for lang, terms in rule[key].items():
                extra = [
                    "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 12)))
                    + ("*" if rng.random() < 0.3 else "")
                    for _ in range(len(terms) * (factor - 1))
                ]
                rule[key][lang] = terms + extra
    more = len(data["code_names"]) * (factor - 1)
    data["code_names"] += [f"Project {i:05d}x" for i in range(more)]
    for embargo in data["embargoes"]:
        more = len(embargo["terms"]) * (factor - 1)
        embargo["terms"] += [f"embargo term {i:05d}" for i in range(more)]
    return policy.model_copy(update={"compliance": ComplianceConfig.model_validate(data)})


def _term_count(policy: Policy) -> int:
    c = policy.compliance
    return (
        sum(len(t) for r in c.rules.values() for t in (*r.terms.values(), *r.exceptions.values()))
        + len(c.code_names)
        + sum(len(e.terms) for e in c.embargoes)
    )


# --- the servers (each in its own subprocess, started the same way) ---------------------


class Result(NamedTuple):
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(kind: str, port: int, var_dir: str) -> None:
    from aiohttp import web

    if kind == "hello":
        async def hello(request: web.Request) -> web.Response:
            del request
            return web.json_response({"hello": "world"})

        app = web.Application()
        app.router.add_get("/", hello)
    else:
        from proxy.runtime import PolicyState
        from proxy.service.app import create_app
        from proxy.settings import Settings

        app = create_app(Settings(policy=EXAMPLE, var_dir=Path(var_dir)), PolicyState(EXAMPLE))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _start(kind: str, port: int, var_dir: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.benchmarks.compliance", "serve", kind, str(port),
         var_dir],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the {kind} server did not start")
    return proc


def _lua_string(text: str) -> str:
    assert "]==]" not in text
    return f"[==[{text}]==]"  # a long bracket string: bytes as they are, no escapes


def _wrk_script(bodies: list[bytes] | None) -> str:
    if bodies is None:
        return 'wrk.method = "GET"\nwrk.path = "/"\n'
    listed = ",\n".join(_lua_string(b.decode()) for b in bodies)
    return (
        f"local bodies = {{\n{listed}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        '  return wrk.format("POST", "/api/v1/check", '
        '{["Content-Type"] = "application/json"}, bodies[i])\n'
        "end\n"
    )


def _wrk(port: int, script: str, seconds: float, pid: int) -> tuple[Result, float]:
    """wrk's result and the server's CPU time per answered request (µs)."""
    cpu = cpu_seconds(pid)
    run = run_wrk(port, script, seconds, CONNECTIONS)
    cpu = cpu_seconds(pid) - cpu
    result = Result(run.rps, run.p50_ms, run.p99_ms, run.non_2xx)
    return result, cpu / max(1, run.requests) * 1e6


def _check_bodies(clean: bool = False) -> list[bytes]:
    texts = ([f"Open day at the ministry on Friday {n}: welcome!" for n in range(DRAFTS)]
             if clean else [_draft(280, seed) for seed in range(1, DRAFTS + 1)])
    return [
        json.dumps({"text": text, "account": "official", "platform": "x",
                    "at": AT.isoformat(), "lang": "lv"}, ensure_ascii=False).encode()
        for text in texts
    ]


def _counted_checks(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("sargs_checks_total{")
    )


def api_benchmark() -> None:
    if shutil.which("wrk") is None:
        print("wrk is missing (apt-get install -y wrk): API benchmark skipped")
        return
    scripts = {"hello": _wrk_script(None), "check": _wrk_script(_check_bodies()),
               "clean": _wrk_script(_check_bodies(clean=True))}
    print(f"== POST /api/v1/check vs aiohttp hello-world (each server alone in a subprocess; "
          f"wrk -t1 -c{CONNECTIONS}, {SECONDS:g} s × {ROUNDS} rounds; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        ports = {"hello": _free_port(), "check": _free_port()}
        procs = {kind: _start(kind, port, tmp) for kind, port in ports.items()}
        try:
            for kind in scripts:  # warm-up: imports, policy, connections, caches of code
                server = "hello" if kind == "hello" else "check"
                _wrk(ports[server], scripts[kind], 1, procs[server].pid)
            ratios: list[float] = []
            cpu_ratios: list[float] = []
            for n in range(1, ROUNDS + 1):
                hello, hello_cpu = _wrk(ports["hello"], scripts["hello"], SECONDS,
                                        procs["hello"].pid)
                check, check_cpu = _wrk(ports["check"], scripts["check"], SECONDS,
                                        procs["check"].pid)
                clean, clean_cpu = _wrk(ports["check"], scripts["clean"], SECONDS,
                                        procs["check"].pid)
                if check.errors or hello.errors or clean.errors:
                    raise RuntimeError(f"non-2xx answers: hello {hello.errors}, "
                                       f"check {check.errors + clean.errors}")
                ratios.append(check.rps / hello.rps)
                cpu_ratios.append(hello_cpu / check_cpu)
                print(f"round {n}: hello-world {hello.rps:>6,.0f} req/s "
                      f"(p50 {hello.p50_ms:.2f} ms, p99 {hello.p99_ms:.2f} ms, "
                      f"{hello_cpu:.0f} µs CPU/req)   "
                      f"/api/v1/check {check.rps:>6,.0f} req/s "
                      f"(p50 {check.p50_ms:.2f} ms, p99 {check.p99_ms:.2f} ms, "
                      f"{check_cpu:.0f} µs CPU/req)   ratio {ratios[-1]:.2f}   "
                      f"[clean drafts: {clean.rps:,.0f} req/s, {clean_cpu:.0f} µs CPU/req, "
                      f"ratio {clean.rps / hello.rps:.2f}]")
            counted = _counted_checks(ports["check"])
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(f"req/s ratio median {statistics.median(ratios):.2f} (spread {min(ratios):.2f}–"
          f"{max(ratios):.2f}; target ≥ 0.5)")
    print(f"CPU per request, hello-world ÷ check: median {statistics.median(cpu_ratios):.2f} "
          f"(spread {min(cpu_ratios):.2f}–{max(cpu_ratios):.2f}): the ratio a server "
          f"saturating its own core would reach, less sensitive to a busy machine")
    print(f"checks counted by the service's /metrics: {counted:,.0f}")


def main() -> None:
    loaded = load(EXAMPLE)
    engine = Engine(loaded.policy)
    big_policy = _inflated(loaded.policy, 10)
    big = Engine(big_policy)
    print("== compliance engine (example institution, all twelve rules)")
    print(f"lexicon terms: {_term_count(loaded.policy)} normal, {_term_count(big_policy)} ×10; "
          f"{DRAFTS} different drafts per length, in turn")
    for length, rounds in ((280, 4000), (5000, 400)):
        texts = [_draft(length, seed) for seed in range(1, DRAFTS + 1)]
        p50, p99 = _latency(engine, texts, rounds)
        b50, b99 = _latency(big, texts, rounds)
        print(f"{length:>5}-char draft: p50 {p50 * 1000:,.0f} µs  p99 {p99 * 1000:,.0f} µs   "
              f"lexicons ×10: p50 {b50 * 1000:,.0f} µs  p99 {b99 * 1000:,.0f} µs   "
              f"ratio p50 {b50 / p50:.2f}× (target < 1.5×)")
    api_benchmark()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(_serve(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        main()

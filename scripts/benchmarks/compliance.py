"""Compliance benchmark: engine latency, lexicon scaling, check API throughput.

Run: ``.venv/bin/python -m scripts.benchmarks.compliance`` (``scripts/bench`` calls main()).

- check latency p50/p99 for a 280-character and a 5,000-character draft over the whole
  rule set of the example institution;
- the same with every lexicon ten times larger (synthetic terms), and the ratio
  (target < 1.5×);
- ``POST /api/v1/check`` requests/s against an aiohttp hello-world endpoint, both real
  servers on loopback in this process, driven by a concurrent aiohttp client for a
  bounded number of requests, and the ratio (target ≥ 0.5).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import string
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, TCPConnector, web

from proxy.compliance.config import ComplianceConfig
from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest
from proxy.policy.loader import load
from proxy.policy.model import Policy
from proxy.runtime import PolicyState
from proxy.service.app import create_app
from proxy.settings import ROOT, Settings

EXAMPLE = ROOT / "policies" / "institutions" / "example"
AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
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


def _latency(engine: Engine, text: str, rounds: int) -> tuple[float, float]:
    request = CheckRequest(text=text, account="official", at=AT, lang="lv")
    for _ in range(20):
        engine.check(request, "bench")
    samples = []
    for _ in range(rounds):
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


async def _throughput(url: str, body: dict[str, Any] | None, total: int, concurrency: int) -> float:
    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector) as session:
        queue = iter(range(total))

        async def worker() -> None:
            for _ in queue:
                if body is None:
                    async with session.get(url) as resp:
                        await resp.read()
                else:
                    async with session.post(url, json=body) as resp:
                        await resp.read()
                        assert resp.status == 200, resp.status

        for _ in range(50):  # warm-up
            async with session.get(url) if body is None else session.post(url, json=body) as r:
                await r.read()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - start)


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def _api(total: int, concurrency: int) -> tuple[float, float]:
    async def hello(request: web.Request) -> web.Response:
        del request
        return web.json_response({"hello": "world"})

    hello_app = web.Application()
    hello_app.router.add_get("/", hello)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(policy=EXAMPLE, var_dir=Path(tmp))
        check_app = create_app(settings, PolicyState(EXAMPLE))
        runners = []
        try:
            runner, hello_port = await _serve(hello_app)
            runners.append(runner)
            runner, check_port = await _serve(check_app)
            runners.append(runner)
            body = {"text": _draft(280), "account": "official", "platform": "x",
                    "at": AT.isoformat(), "lang": "lv"}
            hello_rps = await _throughput(f"http://127.0.0.1:{hello_port}/", None, total,
                                          concurrency)
            check_rps = await _throughput(f"http://127.0.0.1:{check_port}/api/v1/check", body,
                                          total, concurrency)
        finally:
            for runner in runners:
                await runner.cleanup()
    return hello_rps, check_rps


def main() -> None:
    loaded = load(EXAMPLE)
    engine = Engine(loaded.policy)
    big_policy = _inflated(loaded.policy, 10)
    big = Engine(big_policy)
    print("== compliance engine (example institution, all twelve rules)")
    print(f"lexicon terms: {_term_count(loaded.policy)} normal, {_term_count(big_policy)} ×10")
    for length, rounds in ((280, 2000), (5000, 300)):
        text = _draft(length)
        p50, p99 = _latency(engine, text, rounds)
        b50, b99 = _latency(big, text, rounds)
        print(f"{length:>5}-char draft: p50 {p50:.3f} ms  p99 {p99:.3f} ms   "
              f"lexicons ×10: p50 {b50:.3f} ms  p99 {b99:.3f} ms   "
              f"ratio p50 {b50 / p50:.2f}× (target < 1.5×)")
    hello_rps, check_rps = asyncio.run(_api(total=3000, concurrency=32))
    print("== POST /api/v1/check vs aiohttp hello-world (loopback, 32 concurrent, 3000 requests)")
    print(f"hello-world {hello_rps:,.0f} req/s   /api/v1/check {check_rps:,.0f} req/s   "
          f"ratio {check_rps / hello_rps:.2f} (target ≥ 0.5)")


if __name__ == "__main__":
    main()

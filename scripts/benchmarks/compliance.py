"""Compliance benchmark: engine latency, lexicon scaling, check API throughput.

Run: ``.venv/bin/python -m scripts.benchmarks.compliance`` (``scripts/bench`` calls main()).

- check latency p50/p99 for a 280-character and a 5,000-character draft over the whole
  rule set of the example institution (several different drafts in turn: nothing can
  profit from seeing one draft again);
- the same with every lexicon ten times larger (synthetic terms), and the ratio
  (target < 1.5×);
- realistic posts (sixteen, four languages) p50/p99 in a warm loop (target p50 ≤ 30 µs),
  and Presidio's analyzer with pattern recognizers only on the same posts (``hostile``);
- 64 KB hostile drafts, CPU ms per check (target ≤ 50 ms each: ``hostile``);
- ``POST /api/v1/check`` under load: checks per second per core and the realistic posts'
  p50/p99 inside the loaded service (what users feel; issue 11 withdrew the old target
  of half an aiohttp hello-world's req/s, still printed as a reference). Like with
  like: each server runs alone in its own subprocess, the same way (``web.AppRunner``, no
  access log), started by this module; one load generator (``wrk``, one thread, the same
  connections and duration) drives both; each gets a warm-up run first; then ``ROUNDS``
  alternating rounds, and the median and the spread (min–max) of the per-round ratio are
  printed with p50/p99 latencies. Where this process may use two CPUs or more, the servers
  run on the second and wrk on the first (CPU 1 and 0 here), so that neither migrates or
  lands on the other's CPU. The check server is the whole service (``create_app``: every
  middleware, metrics, the store); wrk sends each workload's drafts in turn
  (``WORKLOADS``): ``dense`` 280-character drafts packed with findings (the worst case),
  ``posts`` sixteen realistic posts in the four languages (one in four with a finding),
  ``clean`` short clean drafts. A third server, the same service with the rules skipped
  (every draft answered "ok" unread), takes the posts too: the ceiling any rules engine in
  this service can reach, measured in the same rounds (it skips the hop to the check
  workers too: ``proxy/checkpool.py``). The service's own latency metric
  (middleware and handler, read from ``/metrics`` around each run) gives what a check
  costs inside the loaded server, to set beside the engine's figures above, measured in a
  loop with the CPU caches warm.
- the same ratio from instruction counts (``count_benchmark``: each server under
  callgrind, the service process only: the engine itself runs in the check workers, so
  the count is the service's share of a check, the hop to a worker included; a fixed
  number of requests; the rules-skipped service too): repeatable to a
  few per cent where wall-clock figures on a shared machine drift by tens of per cent. It
  counts work, not time: kernel time is left out, and so is the cost of cache misses,
  which a check (much more code and data per request than a hello-world) pays far more of.

Environment: ``BENCH_API=0`` skips the HTTP part, ``BENCH_SECONDS`` (default 3) per
measurement, ``BENCH_ROUNDS`` (default 3), ``BENCH_COUNT=0`` skips the instruction
counts (about a minute), ``BENCH_COUNT_REQUESTS`` (default 400). Without wrk
(``apt-get install -y wrk``) the API part is skipped; without valgrind the counts.
"""

from __future__ import annotations

import asyncio
import gc
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

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from proxy.compliance.config import ComplianceConfig
from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest
from proxy.policy.loader import load
from proxy.policy.model import Policy
from proxy.settings import ROOT
from scripts.benchmarks import hostile
from scripts.benchmarks._callgrind import Callgrind
from scripts.benchmarks._wrk import cpu_seconds, free_port, on_cpu, run_wrk

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


_POSTS = [  # what staff post: 4 per language, 1 in 4 with one finding; 246–273 characters
    # English
    "Today the ministry opens a new service centre in the city hall. Residents can apply "
    "for permits, ask about benefits and get help with e-services from 9:00 to 17:00 on "
    "weekdays. The centre is accessible by wheelchair and has a quiet room for families. "
    "Welcome!",
    "We are looking for summer interns in data analysis, communication and law. The "
    "internship lasts eight weeks and is paid. Applications close on 15 March; the call "
    "and the selection criteria are on our website. Questions? Our recruitment team "
    "answers within two working days.",
    "Thank you to everyone who took part in the public consultation on the new cycling "
    "strategy: more than 1,200 comments arrived. We read every one of them, and a summary "
    "of what changes in the draft will be published next month. The council decides in May.",
    "Road works on the river bridge start on Monday and last three weeks. Buses 3 and 12 "
    "take a detour through the old town; the timetable is updated in the app. Full details "
    "and the map of the detour: https://bit.ly/bridge-works. Thank you for your patience!",
    # Latvian
    "Šodien ministrija atklāj jaunu klientu apkalpošanas centru. Iedzīvotāji var iesniegt "
    "pieteikumus, saņemt konsultācijas par pabalstiem un palīdzību e-pakalpojumu lietošanā "
    "darba dienās no plkst. 9.00 līdz 17.00. Centrs ir pieejams cilvēkiem ratiņkrēslā. "
    "Laipni lūdzam!",
    "Aicinām jauniešus pieteikties vasaras praksei datu analīzē, komunikācijā un tiesību "
    "jomā. Prakse ilgst astoņas nedēļas un ir apmaksāta. Pieteikšanās līdz 15. martam, "
    "nolikums un vērtēšanas kritēriji ir mūsu tīmekļvietnē. Jautājumus var uzdot arī "
    "sociālajos tīklos.",
    "Paldies visiem, kas piedalījās sabiedriskajā apspriešanā par jauno velosatiksmes "
    "stratēģiju: saņēmām vairāk nekā 1200 komentāru. Mēs izlasījām katru, un kopsavilkums "
    "par izmaiņām projektā tiks publicēts nākamajā mēnesī. Dome lēmumu pieņems maijā.",
    "Sveicam mūsu kolēģi Annu ar iecelšanu jaunajā amatā! Par sadarbību ar nevalstiskajām "
    "organizācijām viņa atbildēs arī turpmāk; jautājumus var uzdot pa tālruni 29123456 "
    "vai klātienē ministrijā darba dienās. Novēlam veiksmi un izturību jaunajos "
    "pienākumos, Anna!",
    # Swedish
    "Idag öppnar kommunen ett nytt servicecenter i stadshuset. Där kan du söka tillstånd, "
    "få råd om bidrag och hjälp med e-tjänster vardagar klockan 9–17. Centret är "
    "tillgängligt för rullstol och har ett tyst rum för barnfamiljer. Varmt välkomna till "
    "oss, vi ses där!",
    "Vi söker sommarpraktikanter inom dataanalys, kommunikation och juridik. Praktiken "
    "pågår i åtta veckor och är betald. Sista ansökningsdag är den 15 mars; annonsen och "
    "urvalskriterierna finns på vår webbplats. Har du frågor svarar rekryteringen inom två "
    "arbetsdagar.",
    "Tack till alla som deltog i samrådet om den nya cykelstrategin: över 1 200 synpunkter "
    "kom in. Vi har läst varenda en, och en sammanfattning av vad som ändras i förslaget "
    "publiceras nästa månad. Kommunfullmäktige fattar beslut i maj. Följ arbetet på vår "
    "webbplats.",
    "Vägarbetet på älvbron börjar på måndag och pågår i tre veckor. Buss 3 och 12 kör en "
    "omväg genom gamla stan; tidtabellen är uppdaterad i appen. Glöm inte: rösta på SD i "
    "valet i september, så blir det ordning på vägarna. Tack för ert tålamod under "
    "arbetet, alla!",
    # Albanian
    "Sot ministria hap një qendër të re shërbimi në bashki. Qytetarët mund të aplikojnë për "
    "leje, të marrin këshilla për ndihmën sociale dhe ndihmë me shërbimet elektronike nga "
    "ora 9 deri në 17 në ditë pune. Qendra është e përshtatshme për karrige me rrota. "
    "Mirë se vini!",
    "Kërkojmë praktikantë për verën në analizë të të dhënave, komunikim dhe drejtësi. "
    "Praktika zgjat tetë javë dhe është e paguar. Afati i aplikimit është 15 marsi; "
    "thirrja dhe kriteret e përzgjedhjes janë në faqen tonë. Për pyetje, ekipi ynë "
    "përgjigjet brenda dy ditëve.",
    "Faleminderit të gjithëve që morën pjesë në konsultimin publik për strategjinë e re të "
    "biçikletave: erdhën mbi 1200 komente. I lexuam të gjitha dhe një përmbledhje e "
    "ndryshimeve në projekt do të publikohet muajin e ardhshëm. Këshilli vendos në maj.",
    "Punimet në urën e lumit fillojnë të hënën dhe zgjasin tri javë. Autobusët 3 dhe 12 "
    "kalojnë nga qyteti i vjetër. Kush ankohet për këtë është thjesht budalla, punët "
    "duhen bërë. Orari i ri është në aplikacion. Faleminderit për durimin tuaj gjatë "
    "punimeve!",
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

        app = create_app(Settings(policy=EXAMPLE, var_dir=Path(var_dir),
                                  metrics_token=METRICS_TOKEN), PolicyState(EXAMPLE))
        if "skipped" in kind:
            from proxy.checkpool import CheckPool

            async def skip(pool: CheckPool, request: CheckRequest) -> Any:
                compiled = pool.policy()
                return compiled.engine.clean(compiled.version)  # the draft is not read

            setattr(CheckPool, "check", skip)  # noqa: B010 (a method replaced in this process)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    if kind != "hello" and "skipped" not in kind:
        from proxy.service.check import CHECKPOOL

        await app[CHECKPOOL].start()  # workers and engines ready, as `sargs run` has them
    if "counted" in kind:
        # The service's background loops (policy watch, grant delivery, bundle) cost per
        # second, not per request; under valgrind they run ~50× longer per request and
        # their timing varies between runs: stopped while requests are counted.
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU, LOAD_CPU = (_CPUS[1], _CPUS[0]) if len(_CPUS) >= 2 else (None, None)
"""Where the servers and wrk run: each on a CPU of its own when this process may use two."""


def _start(kind: str, port: int, var_dir: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.benchmarks.compliance", "serve", kind, str(port),
         var_dir],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=on_cpu(SERVER_CPU),
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
    run = run_wrk(port, script, seconds, CONNECTIONS, LOAD_CPU)
    cpu = cpu_seconds(pid) - cpu
    result = Result(run.rps, run.p50_ms, run.p99_ms, run.non_2xx)
    return result, cpu / max(1, run.requests) * 1e6


METRICS_TOKEN = "bench-metrics-token"  # noqa: S105 (a loopback benchmark's own token)

WORKLOADS = ("dense", "posts", "clean")
"""What ``/api/v1/check`` is sent: ``dense`` 280-character drafts each packed with findings
(an insult, a phone number, an e-mail address, links; the worst case), ``posts`` the
sixteen ``_POSTS`` (realistic: most drafts are fine), ``clean`` short clean drafts (the cost
of the service around the engine)."""


def _check_bodies(workload: str = "dense") -> list[bytes]:
    texts = {
        "dense": lambda: [_draft(280, seed) for seed in range(1, DRAFTS + 1)],
        "posts": lambda: list(_POSTS),
        "clean": lambda: [f"Open day at the ministry on Friday {n}: welcome!"
                          for n in range(DRAFTS)],
    }[workload]()
    return [
        json.dumps({"text": text, "account": "official", "platform": "x",
                    "at": AT.isoformat(), "lang": "lv"}, ensure_ascii=False).encode()
        for text in texts
    ]


def _samples(port: int) -> list[Sample]:
    """Every sample the service's ``/metrics`` shows now."""
    scrape = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                    headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(scrape, timeout=10) as resp:  # noqa: S310 (loopback http)
        text = resp.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


_ANSWERED_CHECK = {"method": "POST", "route": "/api/v1/check", "status": "200"}


def _handler_seconds(port: int) -> tuple[float, float]:
    """(sum, count) of the service's latency metric for answered checks."""
    found = {
        s.name: s.value for s in _samples(port)
        if s.name.startswith("sargs_service_request_duration_seconds_")
        and s.labels == _ANSWERED_CHECK
    }
    latency = "sargs_service_request_duration_seconds"
    return found.get(f"{latency}_sum", 0.0), found.get(f"{latency}_count", 0.0)


def _counted_checks(port: int) -> float:
    return sum(s.value for s in _samples(port) if s.name == "sargs_checks_total")


SKIPPED = "rules skipped"
"""The reference row: the service answering the posts with its rules engine skipped."""


def api_benchmark() -> dict[str, float]:
    """What users feel from the check API under load: checks per second per core and the
    realistic posts' p50/p99 inside the loaded service; beside them, as references (no
    target), the ratio to an aiohttp hello-world and to the service with its rules
    skipped. Returns the median req/s ratio per workload; {} when wrk is missing."""
    if shutil.which("wrk") is None:
        print("wrk is missing (apt-get install -y wrk): API benchmark skipped")
        return {}
    scripts = {"hello": _wrk_script(None)}
    scripts.update({w: _wrk_script(_check_bodies(w)) for w in WORKLOADS})
    pinned = (f"servers on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}" if SERVER_CPU is not None
              else "not pinned: one CPU")
    print(f"== POST /api/v1/check vs aiohttp hello-world (each server alone in a subprocess, "
          f"{pinned}; wrk -t1 -c{CONNECTIONS}, {SECONDS:g} s × {ROUNDS} rounds; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    rows = (*WORKLOADS, SKIPPED)
    ratios: dict[str, list[float]] = {w: [] for w in rows}
    cpu_ratios: dict[str, list[float]] = {w: [] for w in rows}
    handled = {w: [0.0, 0.0] for w in rows}  # the service's latency metric: sum, count
    cpu_us: dict[str, list[float]] = {w: [] for w in rows}
    latency: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        kinds = {"hello": "hello", "check": "check", SKIPPED: "check-skipped"}
        ports = {name: free_port() for name in kinds}
        procs = {name: _start(kind, ports[name], tmp) for name, kind in kinds.items()}
        runs = [("hello", "hello"), *(("check", w) for w in WORKLOADS), (SKIPPED, "posts")]

        def measure(server: str, script: str, seconds: float) -> tuple[Result, float]:
            return _wrk(ports[server], scripts[script], seconds, procs[server].pid)

        try:
            for server, script in runs:  # warm-up: imports, policy, connections, caches
                measure(server, script, 1)
            for n in range(1, ROUNDS + 1):
                hello, hello_cpu = measure("hello", "hello", SECONDS)
                line = (f"round {n}: hello-world {hello.rps:>6,.0f} req/s "
                        f"(p50 {hello.p50_ms:.2f} ms, p99 {hello.p99_ms:.2f} ms, "
                        f"{hello_cpu:.0f} µs CPU/req)")
                for server, script in runs[1:]:
                    row = script if server == "check" else SKIPPED
                    before = _handler_seconds(ports[server])
                    check, check_cpu = measure(server, script, SECONDS)
                    after = _handler_seconds(ports[server])
                    handled[row][0] += after[0] - before[0]
                    handled[row][1] += after[1] - before[1]
                    if check.errors or hello.errors:
                        raise RuntimeError(f"non-2xx answers: hello {hello.errors}, "
                                           f"{row} {check.errors}")
                    ratios[row].append(check.rps / hello.rps)
                    cpu_ratios[row].append(hello_cpu / check_cpu)
                    cpu_us[row].append(check_cpu)
                    latency[row] = (check.p50_ms, check.p99_ms)
                    label = f"/api/v1/check {row}" if server == "check" else f"{SKIPPED} (posts)"
                    line += (f"\n    {label:<22}{check.rps:>7,.0f} req/s "
                             f"(p50 {check.p50_ms:.2f} ms, p99 {check.p99_ms:.2f} ms, "
                             f"{check_cpu:.0f} µs CPU/req)   ratio {ratios[row][-1]:.2f}")
                print(line)
            counted = _counted_checks(ports["check"])
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    per_core = {w: 1e6 / statistics.median(cpu_us[w]) for w in rows}
    summary = {}
    for row in rows:
        r, c = ratios[row], cpu_ratios[row]
        summary[row] = statistics.median(r)
        seconds, count = handled[row]
        print(f"{row:<13} req/s ratio median {statistics.median(r):.2f} (spread "
              f"{min(r):.2f}–{max(r):.2f}); CPU per request, hello-world ÷ check: median "
              f"{statistics.median(c):.2f} ({min(c):.2f}–{max(c):.2f}); in the server, "
              f"middleware and handler: {seconds / max(count, 1) * 1e6:.0f} µs per check")
    print("checks per second per core (1 / server CPU per request): "
          + ", ".join(f"{w} {per_core[w]:,.0f}" for w in rows)
          + "; realistic posts inside the loaded service: "
          + f"p50 {latency['posts'][0]:.2f} ms, p99 {latency['posts'][1]:.2f} ms (wrk, "
          f"{CONNECTIONS} connections)")
    print(f"checks counted by the service's /metrics: {counted:,.0f}")
    return summary


# --- instruction counts (deterministic: independent of what else shares the machine) ------

COUNTED_REQUESTS = int(os.environ.get("BENCH_COUNT_REQUESTS", "400"))


def _count_server(kind: str, bodies: list[bytes] | None, tmp: str) -> float:
    """Instructions one server process executes per answered request (``_callgrind``):
    ``COUNTED_REQUESTS`` requests sent one after another on one keep-alive connection
    (the service's background loops stopped: see ``_serve``),
    less what the server does idle for as long (what is left of the service's timers: policy watch,
    bundle polling)."""
    import http.client

    port = free_port()
    server = Callgrind(f"{kind}.{port}", Path(tmp), "scripts.benchmarks.compliance",
                       ["serve", kind, str(port), tmp])
    try:
        server.ready()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def one(i: int) -> None:
            if bodies is None:
                conn.request("GET", "/")
            else:
                conn.request("POST", "/api/v1/check", body=bodies[i % len(bodies)],
                             headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{kind}: status {response.status}")

        for i in range(50):  # warm-up
            one(i)
        busy, seconds = server.count(lambda: [one(i) for i in range(COUNTED_REQUESTS)])
        idle, _ = server.count(lambda: time.sleep(seconds))
        conn.close()
        return (busy - idle) / COUNTED_REQUESTS
    finally:
        server.stop()


def count_benchmark() -> dict[str, float]:
    """Instructions per request, hello-world vs the check of each workload (and the
    rules-skipped service on the posts), and the ratio hello-world ÷ check per workload.
    {} without valgrind."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is missing (apt-get install -y valgrind): instruction counts skipped")
        return {}
    print(f"== instructions per request (callgrind, {COUNTED_REQUESTS} requests each, one "
          f"connection, idle timers subtracted)")
    with tempfile.TemporaryDirectory() as tmp:
        hello = _count_server("hello", None, tmp)
        ratios = {}
        line = f"hello-world {hello / 1000:,.0f} k"
        for workload in WORKLOADS:
            check = _count_server("check-counted", _check_bodies(workload), tmp)
            ratios[workload] = hello / check
            line += f"   check {workload} {check / 1000:,.0f} k (ratio {hello / check:.2f})"
        skipped = _count_server("check-counted-skipped", _check_bodies("posts"), tmp)
        line += f"   {SKIPPED} (posts) {skipped / 1000:,.0f} k (ratio {hello / skipped:.2f})"
    print(line)
    return ratios


def main() -> None:
    loaded = load(EXAMPLE)
    engine = Engine.from_policy(loaded.policy)
    big_policy = _inflated(loaded.policy, 10)
    big = Engine.from_policy(big_policy)
    gc.collect()
    gc.freeze()  # as a check worker does with its engines (proxy/checkpool.py)
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
    p50, p99 = _latency(engine, list(_POSTS), 4000)
    b50, b99 = _latency(big, list(_POSTS), 4000)
    print(f"realistic posts (246–273 chars, 1 in 4 with a finding): p50 {p50 * 1000:,.1f} µs  "
          f"p99 {p99 * 1000:,.0f} µs (target p50 ≤ 30 µs: {'met' if p50 <= 0.030 else 'MISSED'})"
          f"   lexicons ×10: p50 {b50 * 1000:,.1f} µs   ratio p50 {b50 / p50:.2f}× "
          f"(target ≤ 1.5×)")
    theirs = hostile.presidio(list(_POSTS))
    if theirs is not None:
        print(f"  Sargs is {theirs[0] * 1000 / p50:.0f}× faster at p50 on the same posts "
              "(and checks twelve rules, not only personal data)")
    hostile.worst_case(engine)
    if os.environ.get("BENCH_API", "1") != "0":
        api_benchmark()
    if os.environ.get("BENCH_COUNT", "1") != "0":
        count_benchmark()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(_serve(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        main()

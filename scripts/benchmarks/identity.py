"""Directory identity at the gateway: what Kerberos sign-on costs per request and per user.

One process, loopback only: a real MIT KDC (k5test), a real slapd, the real gateway
(mitmproxy with the Sargs add-ons, ``tests/support/gateway.py``) and aiohttp clients.

1. **Per request, once the connection is signed on**: page loads on one kept-alive
   connection by a Negotiate user (ticket on the first request only, then nothing: the
   gateway remembers the principal per connection, roles from the directory cache) and by
   a Basic user (the header on every request, the gateway's login cache). Rounds alternate
   (negotiate, basic, basic, negotiate, …); reported: requests/s and process CPU per
   request (client and gateway share the process; the client's work is the same in both),
   medians over rounds, and negotiate ÷ basic.
2. **The first request of a new user**: ``NEW_USERS`` users, each with a ticket, each
   making a first request on a new connection and then ``FOLLOW`` more on it. Reported:
   directory lookups and LDAP searches per first request and per follow-up request, and
   the first request's latency beside a follow-up's.

Needs the test extras (k5test, pytest for the harness: ``./scripts/test`` installs them)
and Debian's krb5-kdc and slapd. ``BENCH_SECONDS`` (default 3) per round, ``BENCH_ROUNDS``
(default 4).
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

NEW_USERS = 20
FOLLOW = 20
GROUP_DEPTH = 3


def main() -> int:
    try:
        from tests.support.kdc import kdc_installed
        from tests.support.slapd import slapd_installed
    except ImportError as exc:
        print(f"identity: needs the test extras ({exc}); run ./scripts/test once")
        return 0
    if not (kdc_installed() and slapd_installed()):
        print("identity: needs Debian's krb5-kdc and slapd (./scripts/test installs them)")
        return 0
    return asyncio.run(_run())


async def _run() -> int:
    import aiohttp
    import spnego
    from prometheus_client import CollectorRegistry

    from proxy.directory.cache import DirectoryMetrics, GroupCache
    from proxy.directory.ldap import Directory, DirectoryConfig
    from proxy.directory.negotiate import Negotiator
    from proxy.directory.service import DirectoryIdentity
    from proxy.gateway.addons import make_addons
    from proxy.gateway.negotiate import NegotiateLogins
    from proxy.runtime import PolicyState
    from tests.support.gateway import copy_policy, fake_site, running_gateway
    from tests.support.kdc import kerberos_realm
    from tests.support.slapd import GROUPS, ROOT_DN, ROOT_PW, SUFFIX, running_slapd

    seconds = float(os.environ.get("BENCH_SECONDS", "3"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "4"))
    saved_env = dict(os.environ)
    with kerberos_realm() as kdc, running_slapd() as slapd, \
            tempfile.TemporaryDirectory() as tmp:
        os.environ.update(kdc.env)
        try:
            tmp_path = Path(tmp)
            policy = copy_policy(tmp_path)
            text = (policy / "policy.yaml").read_text()
            text = text.replace("sources: [basic, ip]", "sources: [negotiate, basic]")
            text = text.replace("sargs-interns: [intern]", f'"cn=g0,{GROUPS}": [staff]')
            (policy / "policy.yaml").write_text(text)
            state = PolicyState(policy)
            # Users in g0, nested GROUP_DEPTH deep: g0 ∋ g1 ∋ … ∋ user.
            users = ["alice"] + [f"new{i}" for i in range(NEW_USERS)]
            members = [slapd.add_user(u) for u in users]
            for level in reversed(range(GROUP_DEPTH)):
                members = [slapd.add_group(f"g{level}", members)]
            registry = CollectorRegistry()
            metrics = DirectoryMetrics(registry)
            directory = Directory(DirectoryConfig(slapd.url, SUFFIX, ROOT_DN, ROOT_PW))
            identity = DirectoryIdentity(
                Negotiator([kdc.name]), GroupCache(directory, 300, metrics=metrics),
                lambda: state.current.loaded.policy.identity.directory_groups,
                metrics=metrics,
            )

            def make(settings: Any, policy_state: Any, **kw: Any) -> list[object]:
                return make_addons(settings, policy_state,
                                   negotiate=NegotiateLogins(identity), **kw)

            def ticket(user: str) -> str:
                os.environ["KRB5CCNAME"] = kdc.add_user(user)
                ctx = spnego.client(hostname="127.0.0.1", service="HTTP")
                token = ctx.step()
                assert token is not None
                return "Negotiate " + base64.b64encode(token).decode()

            basic = "Basic " + base64.b64encode(b"bob:bob-pw").decode()
            url = "http://www.linkedin.com/"  # staff: allowed

            async with fake_site() as site, running_gateway(
                tmp_path, site.port, policy=state, make=make,
                users={"bob": ("bob-pw", ["staff"])},
            ) as gateway:

                async def page(session: aiohttp.ClientSession, header: str | None) -> None:
                    headers = {"Accept": "application/json"}  # no injection: less noise
                    if header:
                        headers["Proxy-Authorization"] = header
                    async with session.get(url, proxy=gateway.proxy_url,
                                           headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"unexpected {response.status}")

                async def measure(mode: str) -> tuple[float, float]:
                    connector = aiohttp.TCPConnector(limit=1)
                    async with aiohttp.ClientSession(connector=connector) as session:
                        if mode == "negotiate":
                            await page(session, ticket("alice"))
                            header = None
                        else:
                            header = basic
                            await page(session, header)
                        for _ in range(50):  # warm
                            await page(session, header)
                        count, cpu0, t0 = 0, time.process_time(), time.perf_counter()
                        while time.perf_counter() - t0 < seconds:
                            await page(session, header)
                            count += 1
                        wall = time.perf_counter() - t0
                        return count / wall, (time.process_time() - cpu0) / count

                results: dict[str, list[tuple[float, float]]] = {"negotiate": [], "basic": []}
                order = ["negotiate", "basic"]
                for _ in range(rounds):
                    for mode in order:
                        results[mode].append(await measure(mode))
                    order.reverse()
                print("per request on a signed-on connection (API request, one connection):")
                for mode, rows in results.items():
                    rps = statistics.median(r[0] for r in rows)
                    cpu = statistics.median(r[1] for r in rows)
                    print(f"  {mode:<10} {rps:8.0f} req/s   {cpu * 1e6:7.0f} µs CPU/request")
                ratios = [n[1] / b[1] for n, b in zip(results["negotiate"], results["basic"],
                                                      strict=True)]
                print(f"  negotiate ÷ basic CPU per request: {statistics.median(ratios):.3f} "
                      f"(median of rounds; spread {min(ratios):.3f}–{max(ratios):.3f})")

                # The identity step alone: the access add-on's per-request identification
                # (its per-connection memo included) on a flow of a signed-on connection.
                from mitmproxy.test import tflow

                access = gateway.access
                compiled = state.current
                flows = {mode: tflow.tflow() for mode in ("negotiate", "basic")}
                first = {"negotiate": ticket("alice"), "basic": basic}
                later = {"negotiate": None, "basic": basic}
                for mode, flow in flows.items():
                    flow.client_conn.peername = ("127.0.0.1", 50000)
                    await access.clients.identify(compiled, flow.client_conn, first[mode])
                    await access.clients.identify(compiled, flow.client_conn, later[mode])
                steps: dict[str, list[float]] = {mode: [] for mode in flows}
                for _ in range(rounds):
                    for mode, flow in flows.items():
                        n, t0 = 20_000, time.perf_counter()
                        for _ in range(n):
                            await access.clients.identify(compiled, flow.client_conn,
                                                          later[mode])
                        steps[mode].append((time.perf_counter() - t0) / n)
                print("identification per request (access add-on), signed-on connection / "
                      "cached Basic login:")
                for mode, times in steps.items():
                    print(f"  {mode:<10} {statistics.median(times) * 1e6:6.2f} µs")

                def lookups() -> float:
                    return sum(registry.get_sample_value(
                        "sargs_directory_lookups_total", {"outcome": o}) or 0.0
                        for o in ("found", "not-found", "disabled", "unavailable"))

                firsts, follows = [], []
                first_lookups = follow_lookups = 0.0
                first_searches = follow_searches = 0
                for i in range(NEW_USERS):
                    header = ticket(f"new{i}")
                    connector = aiohttp.TCPConnector(limit=1)
                    async with aiohttp.ClientSession(connector=connector) as session:
                        l0, s0, t0 = lookups(), directory.searches, time.perf_counter()
                        await page(session, header)
                        firsts.append(time.perf_counter() - t0)
                        first_lookups += lookups() - l0
                        first_searches += directory.searches - s0
                        l0, s0 = lookups(), directory.searches
                        for _ in range(FOLLOW):
                            t0 = time.perf_counter()
                            await page(session, None)
                            follows.append(time.perf_counter() - t0)
                        follow_lookups += lookups() - l0
                        follow_searches += directory.searches - s0
                print(f"first request of a new user ({NEW_USERS} users, groups nested "
                      f"{GROUP_DEPTH} deep, OpenLDAP client-side search):")
                print(f"  directory lookups per first request: {first_lookups / NEW_USERS:.2f}"
                      f" ({first_searches / NEW_USERS:.1f} LDAP searches, one connection)")
                print(f"  directory lookups per later request: "
                      f"{follow_lookups / (NEW_USERS * FOLLOW):.2f} "
                      f"({follow_searches} searches in {NEW_USERS * FOLLOW} requests)")
                print(f"  latency: first request p50 {statistics.median(firsts) * 1000:.1f} ms"
                      f" (ticket + directory), later p50 "
                      f"{statistics.median(follows) * 1000:.2f} ms")
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
    return 0

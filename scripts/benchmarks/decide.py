"""Policy decision time: µs per ``AccessPolicy.decide`` with a 1,000-rule policy.

The policy is generated: the example's 16 platforms × 63 roles = 1,008 explicit rules
(a third with time windows, some read-only, some blocking media). Users hold 1–3 roles;
one in ten has an active grant. Decisions are timed for 100 and for 10,000 active users
to show the cost does not depend on the number of users. Target: < 10 µs.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta

from proxy.gateway.access import MemoryGrants
from proxy.policy.decide import AccessPolicy, Grant, RequestKind, Subject
from proxy.policy.loader import load
from proxy.policy.model import AccessRule, Action, LocalizedText, Role, Window
from proxy.settings import ROOT

DECISIONS = 200_000


def generated_policy(roles: int = 63) -> tuple[AccessPolicy, list[str], list[str], int]:
    base = load(ROOT / "policies" / "institutions" / "example").policy
    rng = random.Random(1)
    platforms = list(base.platforms)
    lunch = Window.model_validate({"days": "mon-fri", "from": "12:00", "to": "13:00"})
    evening = Window.model_validate({"days": "mon-fri", "from": "17:00", "to": "24:00"})
    generated: dict[str, Role] = {}
    rules = 0
    for i in range(roles):
        platform_rules = {}
        for platform in platforms:
            action = rng.choice([Action.allow, Action.read, Action.block])
            windows = [lunch, evening] if rng.random() < 0.33 else []
            platform_rules[platform] = AccessRule(
                action=action, windows=windows, otherwise=Action.read,
                media=rng.choice([None, True, False]),
            )
            rules += 1
        generated[f"role-{i}"] = Role(
            name=LocalizedText(en=f"Role {i}"), platforms=platform_rules,
            block_media=rng.random() < 0.5,
        )
    policy = base.model_copy(update={"roles": generated})
    return AccessPolicy(policy), list(generated), platforms, rules


def _time(access: AccessPolicy, users: list[Subject], grants: MemoryGrants,
          platforms: list[str], now: datetime) -> float:
    rng = random.Random(2)
    kinds = list(RequestKind)
    work = [
        (rng.choice(users), rng.choice(platforms), rng.choice(kinds),
         now + timedelta(minutes=rng.randrange(0, 7 * 24 * 60)))
        for _ in range(DECISIONS)
    ]
    decide, active = access.decide, grants.active
    # CPU time of this process: on a shared machine wall time also counts other work.
    start = time.process_time()
    for subject, platform, kind, at in work:
        decide(subject, platform, kind, at, active(subject.user or ""))
    return (time.process_time() - start) / DECISIONS * 1e6


def main() -> int:
    access, roles, platforms, rules = generated_policy()
    rng = random.Random(3)
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"policy: {len(roles)} roles × {len(platforms)} platforms = {rules} rules; "
          f"{DECISIONS:,} decisions per run")
    results = []
    for count in (100, 10_000):
        users = [Subject(f"user{i}", frozenset(rng.sample(roles, rng.randint(1, 3))))
                 for i in range(count)]
        grants = MemoryGrants(
            Grant(f"g{i}", u.user or "", rng.choice(platforms), Action.allow,
                  now + timedelta(days=30))
            for i, u in enumerate(users) if i % 10 == 0
        )
        best = min(_time(access, users, grants, platforms, now) for _ in range(3))
        results.append(best)
        print(f"  {count:>6,} active users ({len(users) // 10:,} grants): "
              f"{best:.2f} µs CPU per decision (best of 3)")
    verdict = "met" if max(results) < 10 else "MISSED"
    print(f"  target < 10 µs per decision: {verdict}; "
          f"10,000 vs 100 users: {results[1] / results[0]:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

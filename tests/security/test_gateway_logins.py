"""Issue 12, class 6: proxy logins cannot be guessed at the gateway's expense.

Through a real gateway, curl guesses passwords: after five wrong ones for a user, that user
is locked (429 with Retry-After) — even the right password waits — and the directory is
not asked again (no password hash is computed); a guesser who moves to other user names
from the same address is locked by address too. Each failure is one JSON event (user,
address, count, never the password) and counts in ``sargs_gateway_login_failures_total``.
A user on another address whose login is already known keeps working.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from proxy.gateway.identity import LOGIN_FAILURES
from tests.security.attack import curl
from tests.support.gateway import FakeSite, Gateway, fake_site, running_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = {
    "anna": ("anna-pw", ["staff"]),
    "boris": ("boris-pw", ["staff"]),
    "carl": ("carl-pw", ["communicator"]),
}


@dataclass
class Env:
    gw: Gateway
    site: FakeSite


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with fake_site() as site, running_gateway(
        tmp_path_factory.mktemp("logins"), site.port, users=USERS
    ) as gw:
        yield Env(gw, site)


def failures(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.event for r in caplog.records if r.name == "sargs.auth"]  # type: ignore[attr-defined]


def counted(outcome: str) -> float:
    return sum(
        sample.value for metric in LOGIN_FAILURES.collect() for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["outcome"] == outcome
    )


async def test_guessing_locks_the_user_then_the_address(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sargs.auth")
    directory = env.gw.directory
    url = "http://example.org/"
    wrong_before, limited_before = counted("wrong"), counted("limited")
    for i in range(5):
        answer = await curl(env.gw, url, user=("anna", f"guess-{i}"))
        assert answer.status == 407, answer
    calls = directory.calls
    assert calls == 5
    # Locked: the right password waits too, and nothing is verified.
    for password in ("guess-5", "anna-pw"):
        answer = await curl(env.gw, url, user=("anna", password), extra=("--include",))
        assert answer.status == 429, answer
        assert "retry-after:" in answer.body.lower()
    assert directory.calls == calls
    events = failures(caplog)
    assert [e["count"] for e in events] == [1, 2, 3, 4, 5]
    assert {e["user"] for e in events} == {"anna"}
    assert {e["address"] for e in events} == {"127.0.0.1"}
    assert all("guess" not in json.dumps(e) and "anna-pw" not in json.dumps(e) for e in events)
    assert counted("wrong") - wrong_before == 5
    assert counted("limited") - limited_before == 2
    # Another user name from the same address: the address is locked as well.
    answer = await curl(env.gw, url, user=("boris", "boris-pw"))
    assert answer.status == 429
    assert directory.calls == calls
    # Nothing was relayed for any of it.
    assert env.site.seen == []
    assert env.gw.sites.refused == []


async def test_a_known_login_keeps_working_during_a_lock(env: Env) -> None:
    """carl logged in before; his cached login does not need the directory."""
    identifier = env.gw.access.identifier
    identifier.limiter.clear()  # a fresh start for this test
    answer = await curl(env.gw, "https://www.linkedin.com/", user=("carl", "carl-pw"))
    assert answer.status == 200
    for i in range(6):
        await curl(env.gw, "https://www.linkedin.com/", user=("carl", f"x{i}"))
    answer = await curl(env.gw, "https://www.linkedin.com/", user=("carl", "carl-pw"))
    assert answer.status == 200, answer

"""Server-side post checks: refused posts never reach the platform, warned ones arrive as sent.

Hook tests use mitmproxy's taddons with the real engine and the example policy; the end
to end tests run one real gateway (mitmproxy with every Sargs addon) for the module.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from proxy.compliance.model import CheckRequest, CheckResult
from proxy.gateway.flowinfo import Hit, info
from proxy.gateway.posts import Posts, thread_checker
from proxy.i18n import LANGUAGES, catalog
from proxy.logs import JsonFormatter
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action
from proxy.runtime import PolicyState
from tests.support.gateway import (
    EXAMPLE_POLICY,
    Clock,
    FakeSite,
    Gateway,
    copy_policy,
    fake_site,
    running_gateway,
)

RIGA = ZoneInfo("Europe/Riga")
SATURDAY = datetime(2026, 11, 28, 11, 0, tzinfo=RIGA)  # outside working hours
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=RIGA)
PHONE = "Zvaniet man uz +371 29 123 456 rīt"  # personal data: block
INSULT = "Tu esi idiots, bet labs"  # offensive: warn
CLEAN = "Sveiki! Šodien atvērta jaunā bibliotēka. 📚"


def test_messages_exist_in_every_language() -> None:
    for key, texts in catalog("posts").items():
        assert set(texts) == set(LANGUAGES), key


# --- hooks ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> PolicyState:
    return PolicyState(copy_policy(tmp_path_factory.mktemp("posts-policy")))


@pytest_asyncio.fixture
async def posts(state: PolicyState) -> AsyncIterator[Posts]:
    addon = Posts(lambda: state.current, now=lambda: SATURDAY)
    with taddons.context(addon):
        yield addon


def post_flow(
    path: str,
    body: bytes,
    ctype: str,
    *,
    host: str = "x.com",
    platform: str = "x",
    roles: frozenset[str] = frozenset({"staff"}),
    lang: str = "lv",
    method: str = "POST",
) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.method = method
    flow.request.scheme, flow.request.host, flow.request.port = "https", host, 443
    flow.request.headers["Host"] = host
    flow.request.path = path
    flow.request.headers["Content-Type"] = ctype
    flow.request.content = body
    record = info(flow)
    record.subject = Subject("anna", roles)
    record.platform = platform
    record.decision = Decision(True, Action.allow, platform, Rule.role, "ok", "staff")
    record.kind = RequestKind.post
    record.lang = lang
    record.host = host
    return flow


async def handle(addon: Posts, flow: http.HTTPFlow) -> None:
    """What mitmproxy does with the hook: await what it returns, if anything."""
    pending = addon.request(flow)
    if pending is not None:
        await pending


def x_post(text: str, **kwargs: object) -> http.HTTPFlow:
    body = json.dumps({"variables": {"tweet_text": text}, "queryId": "abc"}).encode()
    return post_flow("/i/api/graphql/abc/CreateTweet", body, "application/json", **kwargs)  # type: ignore[arg-type]


def facebook_post(text: str) -> http.HTTPFlow:
    variables = json.dumps({"input": {"message": {"text": text}}})
    body = urlencode({"variables": variables, "doc_id": "1"}).encode()
    return post_flow(
        "/api/graphql/", body, "application/x-www-form-urlencoded",
        host="www.facebook.com", platform="facebook",
    )


def mastodon_multipart(text: str) -> http.HTTPFlow:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="status"\r\n\r\n{text}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    return post_flow(
        "/api/v1/statuses", body, f"multipart/form-data; boundary={boundary}",
        host="mastodon.social", platform="mastodon",
    )


def refused(flow: http.HTTPFlow) -> dict[str, object]:
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert flow.response.headers["Content-Type"].startswith("application/json")
    payload = json.loads(flow.response.content or b"")
    assert isinstance(payload, dict)
    return payload


@pytest.mark.parametrize("make", [x_post, facebook_post, mastodon_multipart])
async def test_blocking_post_is_refused_with_findings(posts: Posts, make: object) -> None:
    flow = make(PHONE)  # type: ignore[operator]
    await handle(posts, flow)
    payload = refused(flow)
    assert payload["error"] == "refused"
    assert payload["verdict"] == "block"
    findings = payload["findings"]
    assert isinstance(findings, list)
    phone = next(f for f in findings if f["rule"] == "personal-data")
    assert PHONE[phone["start"] : phone["end"]] == "+371 29 123 456"
    message = str(payload["message"])
    assert message.startswith("Sargs nenosūtīja šo ierakstu")  # lv, as the user reads
    assert phone["message"] in message


async def test_warned_and_clean_posts_pass_unchanged(
    posts: Posts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sargs.posts")
    warned = x_post(INSULT)
    before = warned.request.raw_content
    await handle(posts, warned)
    assert warned.response is None
    assert warned.request.raw_content == before
    assert info(warned).verdict == "warn"
    assert info(warned).findings == [Hit("offensive", "warn")]
    clean = x_post(CLEAN)
    await handle(posts, clean)
    assert clean.response is None
    # One log line for the warned post: rule ids and counts, never the text.
    records = [JsonFormatter().format(r) for r in caplog.records if r.name == "sargs.posts"]
    assert len(records) == 1
    line = json.loads(records[0])
    assert line["message"] == "post passed with findings"  # the facts are fields of their own
    assert line["rules"] == {"offensive": 1}
    assert line["event"] == "post-passed"
    assert "idiots" not in records[0]


async def test_refusal_log_has_no_draft_text(
    posts: Posts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sargs.posts")
    await handle(posts, x_post(PHONE))
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert '"post-refused"' in text
    assert "29 123" not in text
    assert "Zvaniet" not in text


@pytest.mark.parametrize(
    ("flow_args", "why"),
    [
        ({"path": "/i/api/graphql/abc/UserByScreenName"}, "not a posting endpoint"),
        ({"method": "GET"}, "not a post method"),
    ],
)
async def test_other_requests_are_not_checked(
    posts: Posts, flow_args: dict[str, str], why: str
) -> None:
    body = json.dumps({"variables": {"tweet_text": PHONE}}).encode()
    args = {"path": "/i/api/graphql/abc/CreateTweet", "method": "POST", **flow_args}
    flow = post_flow(args["path"], body, "application/json", method=args["method"])
    await handle(posts, flow)
    assert flow.response is None, why


async def test_refused_or_unknown_users_are_left_to_access(posts: Posts) -> None:
    flow = x_post(PHONE)
    info(flow).decision = Decision(False, Action.read, "x", Rule.read_only, "no")
    await handle(posts, flow)
    assert flow.response is None  # the access addon answers these
    flow = x_post(PHONE)
    flow.metadata.clear()  # a flow the access add-on never decided
    await handle(posts, flow)
    assert flow.response is None


async def test_graphql_call_without_the_text_passes(posts: Posts) -> None:
    body = urlencode({"variables": json.dumps({"id": "42"}), "doc_id": "7"}).encode()
    flow = post_flow(
        "/api/graphql/", body, "application/x-www-form-urlencoded",
        host="www.facebook.com", platform="facebook",
    )
    await handle(posts, flow)
    assert flow.response is None


async def test_padding_cannot_hide_a_violation(posts: Posts) -> None:
    flow = x_post("a " * 30_000 + PHONE)
    await handle(posts, flow)
    assert refused(flow)["verdict"] == "block"


async def test_check_failure_refuses_the_post(state: PolicyState) -> None:
    class Broken:
        loaded = state.current.loaded
        catalog = state.current.catalog
        version = "broken"

        class engine:
            @staticmethod
            def check(*_: object) -> None:
                raise RuntimeError("engine down")

    addon = Posts(lambda: Broken())  # type: ignore[arg-type, return-value]
    flow = x_post(CLEAN)
    await handle(addon, flow)
    assert flow.response is not None
    assert flow.response.status_code == 503
    assert json.loads(flow.response.content or b"")["error"] == "check-failed"


async def test_a_check_over_its_budget_refuses_the_post(state: PolicyState) -> None:
    """Fail closed: a check that does not answer in time is a refused post, and the event
    loop stays free meanwhile (the check runs elsewhere)."""
    started = asyncio.Event()

    async def never(request: CheckRequest) -> CheckResult:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def within(request: CheckRequest) -> CheckResult:
        return await asyncio.wait_for(never(request), 0.05)

    addon = Posts(lambda: state.current, now=lambda: SATURDAY, check=within)
    flow = x_post(CLEAN)
    await handle(addon, flow)
    assert started.is_set()
    assert flow.response is not None
    assert flow.response.status_code == 503
    assert info(flow).refused == "post-check-failed"


async def test_the_thread_checker_has_a_budget(state: PolicyState) -> None:
    class Slow:
        loaded = state.current.loaded
        catalog = state.current.catalog
        version = "slow"

        class engine:
            @staticmethod
            def check(*_: object) -> None:
                time.sleep(0.5)

    check = thread_checker(lambda: Slow(), budget=0.05)  # type: ignore[arg-type, return-value]
    with pytest.raises(TimeoutError):
        await check(CheckRequest(text="x"))


async def test_an_unreadable_post_passes_only_where_the_policy_says_so(
    tmp_path: Path,
) -> None:
    directory = copy_policy(tmp_path)
    catalog = directory.parents[1] / "base" / "platforms.yaml"
    catalog.write_text(catalog.read_text().replace(
        "  x:\n    name: X (Twitter)\n", "  x:\n    name: X (Twitter)\n    unreadable_posts: pass\n"
    ))
    relaxed = PolicyState(directory)
    assert relaxed.current.catalog.platforms["x"].unreadable_posts == "pass"
    broken = post_flow("/i/api/graphql/abc/CreateTweet", b"{broken", "application/json")
    addon = Posts(lambda: relaxed.current, now=lambda: SATURDAY)
    await handle(addon, broken)
    assert broken.response is None  # passed, logged
    strict = Posts(lambda: PolicyState(EXAMPLE_POLICY).current, now=lambda: SATURDAY)
    broken = post_flow("/i/api/graphql/abc/CreateTweet", b"{broken", "application/json")
    await handle(strict, broken)
    assert broken.response is not None
    assert broken.response.status_code == 403
    assert info(broken).refused == "post-unreadable"


# --- end to end through a real gateway ------------------------------------------------------

USERS = {"carl": ("carl-pw", ["communicator"]), "anna": ("anna-pw", ["staff"])}


def login(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{USERS[user][0]}".encode()).decode()
    return {"Proxy-Authorization": f"Basic {token}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Gateway, FakeSite, aiohttp.ClientSession]]:
    tmp: Path = tmp_path_factory.mktemp("posts-e2e")
    async with (
        fake_site() as site,
        running_gateway(tmp, site.port, users=USERS, clock=Clock(SATURDAY)) as gw,
        aiohttp.ClientSession() as session,
    ):
        yield gw, site, session


async def send(
    env: tuple[Gateway, FakeSite, aiohttp.ClientSession],
    url: str,
    body: bytes,
    ctype: str,
    user: str = "carl",
    lang: str = "sv",
) -> tuple[int, dict[str, object]]:
    gw, _, session = env
    headers = {
        "Content-Type": ctype, "Accept": "application/json", "Sec-Fetch-Dest": "empty",
        "Accept-Language": lang,
    }
    async with session.post(
        url, data=body, headers=headers, proxy=gw.proxy_url, ssl=gw.ssl_context(),
        proxy_headers=login(user),
    ) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.asyncio(loop_scope="module")
async def test_e2e_blocking_post_never_reaches_the_platform(
    env: tuple[Gateway, FakeSite, aiohttp.ClientSession],
) -> None:
    _, site, _ = env
    site.seen.clear()
    body = json.dumps({"variables": {"tweet_text": PHONE}}).encode()
    status, payload = await send(
        env, "https://x.com/i/api/graphql/abc/CreateTweet", body, "application/json"
    )
    assert status == 403
    assert payload["error"] == "refused"
    assert str(payload["message"]).startswith("Sargs skickade inte")  # Swedish, as asked
    assert site.seen == []


@pytest.mark.asyncio(loop_scope="module")
async def test_e2e_warned_post_arrives_byte_for_byte(
    env: tuple[Gateway, FakeSite, aiohttp.ClientSession],
) -> None:
    _, site, _ = env
    site.seen.clear()
    variables = json.dumps({"input": {"message": {"text": INSULT + " 👍"}}}, ensure_ascii=False)
    body = urlencode({"variables": variables, "doc_id": "1", "fb_dtsg": "x=y&z"}).encode()
    status, payload = await send(
        env, "https://www.facebook.com/api/graphql/", body, "application/x-www-form-urlencoded",
        user="anna",
    )
    assert status == 200
    assert payload["ok"] is True
    assert [r.body for r in site.seen] == [body]
    assert site.seen[0].path == "/api/graphql/"

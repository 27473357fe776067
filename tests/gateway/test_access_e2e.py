"""End to end through a real listening mitmproxy with the Sargs addons (example policy).

One gateway serves the whole module (starting one costs ~0.6 s); tests set the clock,
users and grants they need.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio

from proxy.gateway import decisionlog
from proxy.gateway.access import MemoryGrants
from proxy.policy.decide import Grant
from proxy.policy.model import Action
from tests.support.gateway import FakeSite, Gateway, fake_site, running_gateway, self_signed

pytestmark = pytest.mark.asyncio(loop_scope="module")

RIGA = ZoneInfo("Europe/Riga")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=RIGA)  # working hours
USERS = {
    "anna": ("anna-pw", ["staff"]),
    "eve": ("eve-pw", ["intern"]),
    "carl": ("carl-pw", ["communicator"]),
    "multi": ("multi-pw", ["intern", "expert"]),
    "sec": ("sec-pw", ["it-security"]),
}
PAGE = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Dest": "document"}
XHR = {"Accept": "application/json", "Sec-Fetch-Dest": "empty"}


def login(user: str, password: str | None = None) -> dict[str, str]:
    password = password if password is not None else USERS[user][0]
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Proxy-Authorization": f"Basic {token}"}


class Env:
    def __init__(self, gw: Gateway, site: FakeSite, grants: MemoryGrants) -> None:
        self.gw, self.site, self.grants = gw, site, grants
        self.session = aiohttp.ClientSession()

    async def request(
        self, method: str, url: str, user: str | None, headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
        kwargs.setdefault("ssl", self.gw.ssl_context())
        async with self.session.request(
            method, url, proxy=self.gw.proxy_url,
            proxy_headers=login(user) if user else None, headers=headers or PAGE,
            **kwargs,  # type: ignore[arg-type]
        ) as r:
            return r.status, await r.text(), r.headers


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    grants = MemoryGrants()
    async with fake_site() as site, running_gateway(
        tmp_path_factory.mktemp("gw"), site.port, users=USERS, grants=grants
    ) as gw:
        e = Env(gw, site, grants)
        try:
            yield e
        finally:
            await e.session.close()


@pytest.fixture(autouse=True)
def _reset(env: Env) -> None:
    env.gw.clock.set(MONDAY_10)
    env.site.seen.clear()


@pytest.fixture
def decisions() -> AsyncIterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(decisionlog.JsonFormatter())
    logger = decisionlog.log
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream  # type: ignore[misc]
    logger.removeHandler(handler)
    logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


# --- actions per role -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("user", "url", "status"),
    [
        ("anna", "https://www.linkedin.com/feed/", 200),   # staff: allow
        ("anna", "https://www.youtube.com/watch", 200),    # staff: read (viewing works)
        ("anna", "https://www.tiktok.com/", 403),          # staff: block
        ("eve", "https://www.facebook.com/", 403),         # intern: default block
        ("eve", "https://www.linkedin.com/", 200),         # intern: read
        ("carl", "https://www.tiktok.com/", 200),          # communicator: allow everything
        ("carl", "https://vk.com/", 403),                  # deny: blocked for everyone
        ("sec", "https://www.reddit.com/", 200),           # it-security: read
    ],
)
async def test_each_action_per_role_for_page_loads(env: Env, user: str, url: str,
                                                   status: int) -> None:
    got, body, _ = await env.request("GET", url, user)
    assert got == status
    if status == 200:
        assert "Hello from" in body
        assert env.site.paths() != []
    else:
        assert "<title>" in body
        assert "blocked" in body
        assert env.site.seen == []  # the refused request never reached the platform


POST_X = "https://x.com/i/api/graphql/abc123/CreateTweet"


@pytest.mark.parametrize(
    ("user", "allowed"),
    [("carl", True), ("sec", False), ("anna", False), ("eve", False)],
)
async def test_posting_needs_allow(env: Env, user: str, allowed: bool) -> None:
    got, body, _ = await env.request(
        "POST", POST_X, user, XHR, json={"variables": {"tweet_text": "Hello citizens"}}
    )
    assert (got == 200) is allowed
    assert (env.site.paths("POST") == ["/i/api/graphql/abc123/CreateTweet"]) is allowed
    if not allowed:
        assert json.loads(body)["error"] == "blocked"


async def test_read_only_refuses_a_post_and_it_never_reaches_the_site(
    env: Env, decisions: io.StringIO
) -> None:
    draft = "secret draft about the minister"
    got, body, headers = await env.request(
        "POST", "https://www.youtube.com/youtubei/v1/comment/create_comment?key=tok3n", "sec",
        XHR, json={"commentText": draft},
    )
    assert got == 403
    assert headers["Content-Type"].startswith("application/json")
    data = json.loads(body)
    assert data["rule"] == "read-only"
    assert data["action"] == "read"
    assert data["platform"] == "youtube"
    assert "view-only" in data["message"]
    assert data["request_access"].startswith("http://127.0.0.1:8081/access/request?")
    assert env.site.seen == []
    # Browsing the same platform still works.
    got, _, _ = await env.request("GET", "https://www.youtube.com/", "sec")
    assert got == 200
    log = decisions.getvalue()
    assert draft not in log
    assert "tok3n" not in log
    assert "key=" not in log
    first = lines(decisions)[0]
    assert first["path"] == "/youtubei/v1/comment/create_comment"
    assert first["kind"] == "post"
    assert first["allowed"] is False


async def test_read_only_form_post_navigation_gets_the_block_page(env: Env) -> None:
    got, body, _ = await env.request(
        "POST", "https://mastodon.social/api/v1/statuses", "eve", PAGE,
        data={"status": "hello"},
    )
    # intern: mastodon is blocked entirely; the navigation gets the page
    assert got == 403
    assert "<!doctype html>" in body


# --- time windows ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        (datetime(2026, 11, 23, 11, 59, 59), False),  # Monday, just before lunch
        (datetime(2026, 11, 23, 12, 0, 0), True),     # lunch window opens ('from' inclusive)
        (datetime(2026, 11, 23, 12, 59, 59), True),
        (datetime(2026, 11, 23, 13, 0, 0), False),    # 'to' is exclusive
        (datetime(2026, 11, 23, 8, 29, 59), True),    # before work
        (datetime(2026, 11, 23, 8, 30, 0), False),    # work starts
        (datetime(2026, 11, 27, 15, 29, 0), False),   # Friday afternoon at work
        (datetime(2026, 11, 27, 15, 30, 0), True),    # Friday: work ends 15:30
        (datetime(2026, 11, 28, 10, 0, 0), True),     # Saturday
    ],
)
async def test_staff_posting_windows_at_their_edges(env: Env, local: datetime,
                                                    allowed: bool) -> None:
    env.gw.clock.set(local.replace(tzinfo=RIGA).astimezone(UTC))
    got, body, _ = await env.request(
        "POST", POST_X, "anna", XHR, json={"variables": {"tweet_text": "lunch"}}
    )
    assert (got == 200) is allowed, body
    if not allowed:
        assert json.loads(body)["rule"] == "read-only"
    # Outside the windows staff still read X.
    got, _, _ = await env.request("GET", "https://x.com/home", "anna")
    assert got == 200


# --- several roles, grants -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("https://x.com/", 200),            # intern blocks, expert allows: most permissive
        ("https://www.facebook.com/", 200),  # intern blocks, expert reads
        ("https://www.tiktok.com/", 403),    # both block
        ("https://vk.com/", 403),            # deny wins over every role
    ],
)
async def test_several_roles_combine(env: Env, url: str, status: int) -> None:
    got, _, _ = await env.request("GET", url, "multi")
    assert got == status


async def test_a_grant_opens_a_platform_until_it_expires(env: Env) -> None:
    now = env.gw.clock()
    grant = Grant("g-1", "eve", "facebook", Action.read, now + timedelta(hours=1))
    env.grants.add(grant)
    try:
        got, _, _ = await env.request("GET", "https://www.facebook.com/", "eve")
        assert got == 200
        env.gw.clock.advance(timedelta(hours=1))
        got, _, _ = await env.request("GET", "https://www.facebook.com/", "eve")
        assert got == 403
    finally:
        env.grants.revoke("g-1")


# --- media CDN --------------------------------------------------------------------------------

async def test_video_cdn_blocked_for_roles_that_block_media(env: Env) -> None:
    got, body, _ = await env.request("GET", "https://pbs.twimg.com/media/a.jpg", "anna",
                                     {"Accept": "image/*", "Sec-Fetch-Dest": "image"})
    assert got == 403
    data = json.loads(body)
    assert data["rule"] == "media"
    assert data["guideline"] == "Network load"
    assert env.site.seen == []
    # the rule for youtube re-enables media for staff; communicators get everything
    got, _, _ = await env.request("GET", "https://rr1.googlevideo.com/videoplayback", "anna", XHR)
    assert got == 200
    got, _, _ = await env.request("GET", "https://pbs.twimg.com/media/a.jpg", "carl", XHR)
    assert got == 200


# --- block page ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("accept_language", "lang", "title"),
    [
        ("lv-LV,lv;q=0.9,en;q=0.5", "lv", "Facebook ir bloķēts"),
        ("sv", "sv", "Facebook är blockerat"),
        ("sq-AL", "sq", "Facebook është i bllokuar"),
        ("de-DE", "en", "Facebook is blocked"),
    ],
)
async def test_block_page_speaks_the_users_language(env: Env, accept_language: str, lang: str,
                                                    title: str) -> None:
    got, body, headers = await env.request(
        "GET", "https://www.facebook.com/groups/x?ref=secret", "eve",
        {**PAGE, "Accept-Language": accept_language},
    )
    assert got == 403
    assert headers["Content-Type"].startswith("text/html")
    assert f'<html lang="{lang}">' in body
    assert f"<title>{title}</title>" in body
    # why, under which guideline, and where to ask for access
    assert 'id="sargs-why"' in body
    assert 'id="sargs-guideline"' in body
    assert ("http://127.0.0.1:8081/access/request?platform=facebook&amp;url="
            "https%3A%2F%2Fwww.facebook.com%2Fgroups%2Fx") in body
    assert "secret" not in body
    # Rule and roles by name, in the same language, not as policy ids.
    rule = {"lv": "Jūsu lomai nav norādīts", "sv": "Inte listad för din roll",
            "sq": "E palistuar për rolin tuaj", "en": "Not listed for your role"}[lang]
    assert f"<dd>{rule}</dd>" in body
    assert "<dd>default</dd>" not in body
    assert "<dd>intern</dd>" not in body


async def test_block_page_explains_the_time_window(env: Env) -> None:
    got, body, _ = await env.request(
        "POST", "https://www.facebook.com/api/graphql/", "anna", PAGE,
        data={"variables": json.dumps({"input": {"message": {"text": "hi"}}})},
    )
    assert got == 403
    assert "view-only access to Facebook" in body
    assert "Staff" in body


async def test_deny_page_gives_the_reason_and_no_request_form(env: Env) -> None:
    got, body, _ = await env.request("GET", "https://vk.com/", "carl",
                                     {**PAGE, "Accept-Language": "lv"})
    assert got == 403
    assert "Nacionālās elektronisko plašsaziņas līdzekļu padomes" in body
    assert "sargs-request" not in body


async def test_block_page_escapes_what_it_shows(env: Env) -> None:
    got, body, _ = await env.request("GET", "https://www.facebook.com/<script>x", "eve", PAGE)
    assert got == 403
    assert "<script>x" not in body


# --- identity ---------------------------------------------------------------------------------

async def test_no_login_gets_407_with_the_realm(env: Env) -> None:
    got, body, headers = await env.request(
        "GET", "http://x.com/", None, {**PAGE, "Accept-Language": "sv"}
    )
    assert got == 407
    assert headers["Proxy-Authenticate"].startswith('Basic realm="Sargs (Example Ministry)"')
    assert "arbetsinloggning" in body
    assert env.site.seen == []


async def test_wrong_password_gets_407_and_is_cached_briefly(env: Env) -> None:
    calls = env.gw.directory.calls
    for _ in range(3):
        got, body, _headers = await env.request(
            "GET", "http://x.com/", None, {**login("anna", "guess"), **PAGE}
        )
        assert got == 407
        assert "not accepted" in body
    assert env.gw.directory.calls == calls + 1
    assert env.site.seen == []


async def test_407_at_connect_for_https(env: Env) -> None:
    with pytest.raises(aiohttp.ClientHttpProxyError) as info:
        await env.request("GET", "https://x.com/", None)
    assert info.value.status == 407
    with pytest.raises(aiohttp.ClientHttpProxyError):
        async with env.session.get("https://x.com/", proxy=env.gw.proxy_url,
                                   ssl=env.gw.ssl_context(),
                                   proxy_headers=login("anna", "nope")):
            pass


async def test_a_login_is_verified_once(env: Env) -> None:
    # plain http through a proxy: the login rides on every request (aiohttp sends
    # proxy_headers only with CONNECT)
    await env.request("GET", "http://www.linkedin.com/", None, {**PAGE, **login("eve")})
    calls = env.gw.directory.calls
    for _ in range(3):
        got, _, _ = await env.request("GET", "http://www.linkedin.com/", None,
                                      {**PAGE, **login("eve")})
        assert got == 200
    for _ in range(3):  # https: checked at CONNECT, remembered for the connection
        got, _, _ = await env.request("GET", "https://www.linkedin.com/", "eve")
        assert got == 200
    assert env.gw.directory.calls == calls
    # the proxy login is ours: never forwarded to the platform
    assert all("Proxy-Authorization" not in r.headers for r in env.site.seen)


# --- tunnelling ---------------------------------------------------------------------------------

async def test_non_catalog_tls_host_is_tunnelled_untouched(
    env: Env, tmp_path_factory: pytest.TempPathFactory, decisions: io.StringIO
) -> None:
    cert, key = self_signed(tmp_path_factory.mktemp("origin"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))  # trusts the origin only
    options = env.gw.master.options
    async with fake_site(server_ctx) as origin:
        # A loopback origin is inside: IT lists it (the harness lists only the stand-ins).
        before = list(options.sargs_allowed_upstreams)
        options.update(sargs_allowed_upstreams=[*before, f"127.0.0.1:{origin.port}"])
        try:
            async with env.session.get(
                f"https://127.0.0.1:{origin.port}/private?q=1", proxy=env.gw.proxy_url,
                ssl=client_ctx, headers=PAGE, proxy_headers=login("eve"),
            ) as r:
                # The handshake verified against the origin's own self-signed certificate.
                assert r.status == 200
        finally:
            options.update(sargs_allowed_upstreams=before)
        assert origin.paths() == ["/private?q=1"]
        # Control: a catalog host is intercepted, so the origin-only trust store fails.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await env.request("GET", "https://x.com/", "anna", ssl=client_ctx)
    assert decisions.getvalue() == ""


# --- decision log -------------------------------------------------------------------------------

async def test_every_decision_is_one_json_line(env: Env, decisions: io.StringIO) -> None:
    await env.request("GET", "https://www.linkedin.com/in/someone?trk=abc", "anna")
    await env.request("GET", "https://www.tiktok.com/@x", "anna")
    allowed, blocked = lines(decisions)
    assert allowed["user"] == "anna"
    assert allowed["roles"] == ["staff"]
    assert allowed["platform"] == "linkedin"
    assert allowed["allowed"] is True
    assert allowed["path"] == "/in/someone"
    assert allowed["host"] == "www.linkedin.com"
    assert allowed["source"] == "basic"
    assert allowed["kind"] == "page"
    assert str(allowed["policy"]).startswith("2026.11-example+")
    assert blocked["allowed"] is False
    assert blocked["action"] == "block"
    assert blocked["rule"] == "role"
    assert blocked["role"] == "staff"
    assert set(allowed) >= {"ts", "reason", "grant", "method"}

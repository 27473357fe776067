"""Issue 12, classes 2 and 4: posting endpoints are matched canonically, and read-only
means read-only.

Every spelling of X's CreateTweet path (doubled slashes, percent-encoded letters, dot
segments, ``;params``, case, trailing slash, PUT/PATCH/DELETE instead of POST) is sent with
curl through a real gateway, over HTTP/1.1 and HTTP/2 inside the TLS tunnel:

- as a read-only role (it-security reads everything): refused;
- as a role that may post, with a text that breaks the code of conduct: the content check
  runs and refuses it;

and the stand-in platform receives nothing. Paths that cannot be read with certainty
(``%2F``, ``%00``, over-long UTF-8) are refused for everyone. The catalog's reading calls
(request shapes copied from the real pages, ``tests/sites/platforms.py``) still work for
the read-only role, and an unlisted write (a follow, a deletion) does not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import pytest_asyncio

from tests.security.attack import PROTOCOLS, curl
from tests.sites.platforms import READS
from tests.support.gateway import FakeSite, Gateway, fake_site, running_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = {"sec": ("sec-pw", ["it-security"]), "carl": ("carl-pw", ["communicator"])}
READER = ("sec", "sec-pw")
POSTER = ("carl", "carl-pw")
PHONE = "Zvaniet man uz +371 29 123 456 rīt"  # personal data: block
CLEAN = "Sveiki! Šodien atvērta jaunā bibliotēka."
JSON = {"Content-Type": "application/json", "Accept": "application/json"}

SPELLINGS = [
    "/i/api/graphql/abc/CreateTweet",
    "//i/api/graphql/abc/CreateTweet",
    "/i/api//graphql/abc/CreateTweet",
    "/i/api/graphql/abc/CreateTweet/",
    "/i/api/%67raphql/abc/CreateTweet",
    "/i/api/graphql/abc/Create%54weet",
    "/i/api/./graphql/abc/CreateTweet",
    "/i/x/../api/graphql/abc/CreateTweet",
    "/i/api/%2e/graphql/abc/CreateTweet",
    "/i/api/graphql/abc/CreateTweet;a=b",
    "/I/API/GRAPHQL/abc/createtweet",
]
UNREADABLE = [
    "/i/api/graphql%2Fabc/CreateTweet",
    "/i/api/graphql/abc/CreateTweet%00",
    "/i/api/%C0%AFgraphql/abc/CreateTweet",
    "/i/api/%2567raphql/abc/CreateTweet",
]


@dataclass
class Env:
    gw: Gateway
    site: FakeSite


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with fake_site() as site, running_gateway(
        tmp_path_factory.mktemp("paths"), site.port, users=USERS
    ) as gw:
        yield Env(gw, site)


@pytest.fixture(autouse=True)
def _clear(env: Env) -> None:
    env.site.seen.clear()


def tweet(text: str) -> bytes:
    return json.dumps({"variables": {"tweet_text": text}, "queryId": "abc"}).encode()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_every_spelling_is_a_post_for_the_content_check(
    env: Env, protocol: str, method: str
) -> None:
    for path in SPELLINGS:
        answer = await curl(
            env.gw, f"https://x.com{path}", user=POSTER, method=method, protocol=protocol,
            headers=JSON, data=tweet(PHONE),
        )
        assert answer.status == 403, (path, answer)
        assert json.loads(answer.body)["error"] == "refused", path
        assert answer.http_version == ("2" if protocol == "http2" else "1.1")
    assert env.site.seen == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_every_spelling_is_refused_to_a_read_only_role(
    env: Env, protocol: str, method: str
) -> None:
    for path in SPELLINGS:
        answer = await curl(
            env.gw, f"https://x.com{path}", user=READER, method=method, protocol=protocol,
            headers=JSON, data=tweet(CLEAN),
        )
        assert answer.status == 403, (path, answer)
        assert json.loads(answer.body)["rule"] == "read-only", path
    assert env.site.seen == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_unreadable_paths_are_refused_for_everyone(env: Env, protocol: str) -> None:
    for user in (READER, POSTER):
        for path in UNREADABLE:
            answer = await curl(
                env.gw, f"https://x.com{path}", user=user, method="POST", protocol=protocol,
                headers=JSON, data=tweet(CLEAN),
            )
            assert answer.status == 400, (user, path, answer)
            assert json.loads(answer.body)["error"] == "unreadable-path"
    assert env.site.seen == []


async def test_a_clean_post_still_goes_through(env: Env) -> None:
    """Control: the poster's clean post reaches the platform, whatever the spelling."""
    answer = await curl(
        env.gw, "https://x.com//i/api/graphql/abc/CreateTweet/", user=POSTER, method="POST",
        headers=JSON, data=tweet(CLEAN),
    )
    assert answer.status == 200, answer
    (arrived,) = env.site.paths("POST")
    assert arrived.endswith("/i/api/graphql/abc/CreateTweet/")  # as sent, not rewritten


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_read_only_role_reads_through_the_listed_post_calls(
    env: Env, protocol: str
) -> None:
    for shape in READS:
        answer = await curl(
            env.gw, shape.url, user=READER, method="POST", protocol=protocol,
            headers={"Content-Type": shape.content_type}, data=shape.body,
        )
        assert answer.status == 200, (shape, answer)
    assert len(env.site.paths("POST")) == len(READS)


@pytest.mark.parametrize(
    ("url", "method", "ctype", "body"),
    [
        # A follow and a like: unsafe calls the catalog does not list as reads.
        ("https://x.com/i/api/1.1/friendships/create.json", "POST",
         "application/x-www-form-urlencoded", b"user_id=12"),
        ("https://x.com/i/api/graphql/lI07N6Otwv1PhnEgXILM7A/FavoriteTweet", "POST",
         "application/json", b'{"variables":{"tweet_id":"1"}}'),
        ("https://mastodon.social/api/v1/statuses/1", "DELETE", "application/json", b""),
        # A reading call's operation name on a post: the text makes it a post.
        ("https://www.facebook.com/api/graphql/", "POST", "application/x-www-form-urlencoded",
         urlencode({"fb_api_req_friendly_name": "CometNewsFeedPaginationQuery",
                    "variables": json.dumps({"input": {"message": {"text": CLEAN}}}),
                    "doc_id": "1"}).encode()),
        # A reading call's name where the operation cannot be read: no reading call.
        ("https://www.facebook.com/api/graphql/", "POST", "application/x-www-form-urlencoded",
         b"fb_api_req_friendly_name=CometNewsFeedPaginationQuery&variables=%FF"),
        # A path the catalog does not know at all.
        ("https://www.youtube.com/youtubei/v1/like/like", "POST", "application/json",
         b'{"target":{"videoId":"x"}}'),
    ],
)
async def test_read_only_role_cannot_write_past_the_reading_calls(
    env: Env, url: str, method: str, ctype: str, body: bytes
) -> None:
    for protocol in PROTOCOLS:
        answer = await curl(
            env.gw, url, user=READER, method=method, protocol=protocol,
            headers={"Content-Type": ctype, "Accept": "application/json"}, data=body,
        )
        assert answer.status == 403, (url, answer)
        assert json.loads(answer.body)["rule"] == "read-only"
    assert env.site.seen == []

"""Issue 12, class 5: the post check fails closed.

A communicator (allowed to post everywhere) sends a text that breaks the code of conduct
through a real gateway, hidden each way the issue found: in the query string, as a
multipart body to an endpoint listed with form fields, under a Content-Encoding the check
cannot decode (``x-gzip``, ``gzip, gzip``, ``compress``), in broken JSON or behind a
duplicate JSON key, just past the boundary of the pieces long texts are checked in, and
in a body over the platform's cap. Each is refused (403 with the reason in the user's
language, or 413) over HTTP/1.1 and HTTP/2, and the stand-in platform receives nothing.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import pytest_asyncio

from proxy.compliance.model import MAX_TEXT
from tests.security.attack import PROTOCOLS, curl
from tests.support.gateway import FakeSite, Gateway, fake_site, running_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = {"carl": ("carl-pw", ["communicator"])}
CARL = ("carl", "carl-pw")
PHONE = "Zvaniet man uz +371 29 123 456 rīt"  # personal data: block
CLEAN = "Sveiki! Šodien atvērta jaunā bibliotēka."
BOUNDARY = "----sargs7MA4YWxk"


@dataclass
class Env:
    gw: Gateway
    site: FakeSite


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with fake_site() as site, running_gateway(
        tmp_path_factory.mktemp("posts"), site.port, users=USERS
    ) as gw:
        yield Env(gw, site)


@pytest.fixture(autouse=True)
def _clear(env: Env) -> None:
    env.site.seen.clear()


def tweet(text: str) -> bytes:
    return json.dumps({"variables": {"tweet_text": text}, "queryId": "abc"}).encode()


def multipart(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()


CREATE_TWEET = "https://x.com/i/api/graphql/abc/CreateTweet"
APPLICATION_JSON = "application/json"
# (name, url, headers, body, refusal)
ATTACKS: list[tuple[str, str, dict[str, str], bytes, str]] = [
    ("query string", f"https://www.tiktok.com/api/comment/publish/?aweme_id=1&text={quote(PHONE)}",
     {"Content-Type": "application/x-www-form-urlencoded"}, b"aweme_id=1", "refused"),
    ("query beside a clean JSON body", f"https://x.com/2/tweets?text={quote(PHONE)}",
     {"Content-Type": APPLICATION_JSON}, json.dumps({"text": CLEAN}).encode(), "refused"),
    ("multipart to a form endpoint", "https://x.com/1.1/statuses/update.json",
     {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
     multipart("status", PHONE), "refused"),
    ("x-gzip", CREATE_TWEET, {"Content-Type": APPLICATION_JSON, "Content-Encoding": "x-gzip"},
     gzip.compress(tweet(PHONE)), "post-unreadable"),
    ("gzip, gzip", CREATE_TWEET,
     {"Content-Type": APPLICATION_JSON, "Content-Encoding": "gzip, gzip"},
     gzip.compress(gzip.compress(tweet(PHONE))), "post-unreadable"),
    ("compress", CREATE_TWEET, {"Content-Type": APPLICATION_JSON, "Content-Encoding": "compress"},
     tweet(PHONE), "post-unreadable"),
    ("gzip that is not", CREATE_TWEET,
     {"Content-Type": APPLICATION_JSON, "Content-Encoding": "gzip"}, tweet(PHONE),
     "post-unreadable"),
    ("broken JSON", CREATE_TWEET, {"Content-Type": APPLICATION_JSON},
     b'{"variables": {"tweet_text": "' + PHONE.encode() + b'"', "post-unreadable"),
    ("duplicate JSON key", CREATE_TWEET, {"Content-Type": APPLICATION_JSON},
     b'{"variables": {"tweet_text": "ok", "tweet_text": "' + PHONE.encode() + b'"}}',
     "post-unreadable"),
    ("an unknown body type", CREATE_TWEET, {"Content-Type": "application/x-protobuf"},
     b"\x0a\x2a" + PHONE.encode(), "post-unreadable"),
    ("form fields sent as text", "https://x.com/1.1/statuses/update.json",
     {"Content-Type": "text/plain"}, f"status={quote(PHONE)}".encode(), "post-unreadable"),
    ("past the piece boundary", CREATE_TWEET, {"Content-Type": APPLICATION_JSON},
     # the first piece ends inside the number ("+371 29 12" | "3 456"): neither half
     # is a phone number alone
     tweet("x" * (MAX_TEXT - 26) + " " + PHONE), "refused"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("name", "url", "headers", "body", "error"), ATTACKS,
                         ids=[a[0] for a in ATTACKS])
async def test_hidden_text_is_refused(
    env: Env, protocol: str, name: str, url: str, headers: dict[str, str], body: bytes,
    error: str,
) -> None:
    answer = await curl(
        env.gw, url, user=CARL, method="POST", protocol=protocol,
        headers={**headers, "Accept": APPLICATION_JSON, "Accept-Language": "lv"}, data=body,
    )
    assert answer.status == 403, (name, answer)
    payload = json.loads(answer.body)
    assert payload["error"] == error, name
    assert "Sargs" in payload["message"]
    assert "nosūtīj" in payload["message"] or "netika nosūtīts" in payload["message"], payload
    assert env.site.seen == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_body_over_the_platform_cap_is_refused(env: Env, protocol: str) -> None:
    answer = await curl(
        env.gw, CREATE_TWEET, user=CARL, method="POST", protocol=protocol,
        headers={"Content-Type": APPLICATION_JSON}, data=tweet(CLEAN + " " * 1_100_000),
    )
    assert answer.status == 413, answer
    assert json.loads(answer.body)["error"] == "post-too-large"
    assert env.site.seen == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_clean_posts_in_every_form_still_arrive(env: Env, protocol: str) -> None:
    """Control: what can be read and is clean arrives, as sent (the stand-in, an aiohttp
    server, decodes the gzip body itself; it still says gzip)."""
    sent = [
        (CREATE_TWEET, {"Content-Type": APPLICATION_JSON, "Content-Encoding": "gzip"},
         gzip.compress(tweet(CLEAN))),
        ("https://x.com/1.1/statuses/update.json",
         {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
         multipart("status", CLEAN)),
        (f"https://www.tiktok.com/api/comment/publish/?aweme_id=1&text={quote(CLEAN)}",
         {"Content-Type": "application/x-www-form-urlencoded"}, b"aweme_id=1"),
    ]
    for url, headers, body in sent:
        answer = await curl(env.gw, url, user=CARL, method="POST", protocol=protocol,
                            headers=headers, data=body)
        assert answer.status == 200, (url, answer)
    assert [r.body for r in env.site.seen] == [tweet(CLEAN), *(body for _, _, body in sent[1:])]
    assert env.site.seen[0].headers["Content-Encoding"] == "gzip"

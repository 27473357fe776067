"""The canonical path: every spelling a server routes to a posting endpoint reads the same,
and what cannot be read with certainty is None (refused)."""

from __future__ import annotations

import pytest

from proxy.policy.canonical import canonical_path, is_unsafe
from proxy.policy.catalog import Catalog
from proxy.runtime import PolicyState
from tests.support.gateway import EXAMPLE_POLICY

ENDPOINT = "/i/api/graphql/abc/createtweet"

SPELLINGS = [
    "/i/api/graphql/abc/CreateTweet",
    "//i/api/graphql/abc/CreateTweet",
    "/i/api//graphql/abc/CreateTweet",
    "/i/api/graphql/abc/CreateTweet/",
    "/i/api/graphql/abc/CreateTweet//",
    "/i/api/%67raphql/abc/CreateTweet",
    "/i/api/%67%72%61%70%68%71%6C/abc/CreateTweet",
    "/i/api/graphql/abc/Create%54weet",
    "/i/api/./graphql/abc/CreateTweet",
    "/i/api/graphql/abc/./CreateTweet",
    "/i/x/../api/graphql/abc/CreateTweet",
    "/i/api/graphql/abc/x/../CreateTweet",
    "/i/api/%2e/graphql/abc/CreateTweet",
    "/i/x/%2E%2E/api/graphql/abc/CreateTweet",
    "/../../i/api/graphql/abc/CreateTweet",
    "/i/api/graphql/abc/CreateTweet;jsessionid=1",
    "/i/api;x=1/graphql/abc/CreateTweet",
    "/I/API/GraphQL/abc/CREATETWEET",
    "/i/api/graphql/abc/CreateTweet?x=/../..",
    "/i/api/graphql/abc/CreateTweet#frag",
]


@pytest.mark.parametrize("path", SPELLINGS)
def test_every_spelling_reads_as_the_endpoint(path: str) -> None:
    assert canonical_path(path) == ENDPOINT


@pytest.mark.parametrize(
    "path",
    [
        "/i/api/graphql%2Fabc/CreateTweet",  # an encoded slash: servers disagree
        "/i/api/graphql%2fabc/CreateTweet",
        "/i/api/graphql/abc/CreateTweet%00",  # NUL
        "/i/api/graphql/abc/CreateTweet%00.json",
        "/i/api/graphql%5Cabc/CreateTweet",  # encoded backslash
        "/i/api\\graphql/abc/CreateTweet",
        "/i/api/%2567raphql/abc/CreateTweet",  # double encoding
        "/i/api/%C0%AFgraphql/abc/CreateTweet",  # over-long UTF-8 for '/'
        "/i/api/%E0%80%AFgraphql",  # over-long, three bytes
        "/i/api/%FFgraphql",  # not UTF-8
        "/i/api/%g7raphql",  # not an encoding
        "/i/api/graphql%",
        "/i/api/graphql/%0d%0aX",  # control characters
        "i/api/graphql",  # not a path
        "",
    ],
)
def test_what_cannot_be_read_with_certainty_is_none(path: str) -> None:
    assert canonical_path(path) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("//", "/"),
        ("/..", "/"),
        ("/a/b/../../..", "/"),
        ("/caf%C3%A9", "/café"),
        ("/a%20b", "/a b"),
    ],
)
def test_edges(path: str, expected: str) -> None:
    assert canonical_path(path) == expected


@pytest.mark.parametrize(
    ("method", "unsafe"),
    [("GET", False), ("head", False), ("OPTIONS", False), ("POST", True), ("PUT", True),
     ("PATCH", True), ("DELETE", True), ("PROPFIND", True), ("get2", True)],
)
def test_unsafe_methods(method: str, unsafe: bool) -> None:
    assert is_unsafe(method) is unsafe


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return PolicyState(EXAMPLE_POLICY).current.catalog


@pytest.mark.parametrize("path", SPELLINGS)
def test_the_catalog_matches_every_spelling(catalog: Catalog, path: str) -> None:
    canonical = canonical_path(path)
    assert canonical is not None
    assert catalog.posting_endpoint("x", "x.com", canonical) is not None


def test_reading_calls_match_by_path_and_operation(catalog: Catalog) -> None:
    feed = "CometNewsFeedPaginationQuery"
    assert catalog.reading_call("facebook", "www.facebook.com", "/api/graphql", feed)
    assert catalog.reading_call("facebook", "www.facebook.com", "/api/graphql", None) is None
    assert catalog.reading_call("facebook", "www.facebook.com", "/api/graphql", "X") is None
    assert catalog.reading_call("youtube", "www.youtube.com", "/youtubei/v1/browse", None)
    assert catalog.reading_call("youtube", "www.youtube.com", "/youtubei/v1/x", None) is None

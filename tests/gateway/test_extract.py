"""Text extraction from posting requests, per the catalog's text locations."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from proxy.gateway.extract import (
    Request,
    Unreadable,
    all_texts,
    attachments,
    operation_name,
    parse_location,
    texts,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "----sargsBoundary7MA4YWxk"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*parts: tuple[str, str | bytes, str | None, str | None]) -> bytes:
    """(name, value, filename, content type) → a multipart/form-data body."""
    out = b""
    for name, value, filename, ctype in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + (value.encode() if isinstance(value, str) else value) + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


FB_VARIABLES = json.dumps({"input": {"message": {"text": "Sveiki, Rīga! 👋"}, "actor_id": "1"}})

CASES = [
    # X: JSON body
    (
        Request(json.dumps({"variables": {"tweet_text": "hello ✓"}}).encode(), JSON, ""),
        "json:variables.tweet_text",
        ["hello ✓"],
    ),
    # X legacy: form field
    (Request(urlencode({"status": "Labdien"}).encode(), FORM, ""), "form:status", ["Labdien"]),
    # Facebook: a form field holding JSON
    (
        Request(urlencode({"variables": FB_VARIABLES, "doc_id": "9"}).encode(), FORM, ""),
        "form:variables|json:input.message.text",
        ["Sveiki, Rīga! 👋"],
    ),
    # Facebook GraphQL call that is not a post: location absent
    (
        Request(urlencode({"variables": '{"id": 3}'}).encode(), FORM, ""),
        "form:variables|json:input.message.text",
        [],
    ),
    # Mastodon: multipart text field, the file part is not text
    (
        Request(
            multipart(
                ("status", "Hej Sverige", None, None),
                ("status", "fake", "status.txt", "text/plain"),
            ),
            MULTIPART,
            "",
        ),
        "multipart:status",
        ["Hej Sverige"],
    ),
    # TikTok: query string
    (Request(b"", FORM, "aweme_id=1&text=P%C3%ABrsh%C3%ABndetje"), "query:text", ["Përshëndetje"]),
    # Lists and wildcards
    (
        Request(json.dumps({"items": [{"t": "a"}, {"t": "b"}, {"t": 3}]}).encode(), JSON, ""),
        "json:items[*].t",
        ["a", "b", "3"],  # a number where text belongs is read as text
    ),
    (Request(json.dumps({"items": ["a", "b"]}).encode(), JSON, ""), "json:items[1]", ["b"]),
    (Request(json.dumps({"a": {"x": {"t": "1"}}}).encode(), JSON, ""), "json:a.*.t", ["1"]),
    # Missing field: nothing; an object where text belongs is read through
    (Request(b'{"other": "x"}', JSON, ""), "json:text", []),
    (Request(json.dumps({"text": {"nested": "x"}}).encode(), JSON, ""), "json:text", ["x"]),
    # Every parameter source: a form name in the query, multipart or a JSON body alike
    (Request(b"", FORM, "text=q"), "form:text", ["q"]),
    (Request(multipart(("text", "m", None, None)), MULTIPART, ""), "form:text", ["m"]),
    (Request(b'{"text": "j"}', JSON, ""), "form:text", ["j"]),
    (Request(b"text=f", FORM, ""), "json:text", ["f"]),
    # Form field repeated: every value
    (Request(b"text=one&text=two", FORM, ""), "form:text", ["one", "two"]),
    # JSON sent as text/plain (some platforms do)
    (Request(b'{"text": "plain"}', "text/plain;charset=UTF-8", ""), "json:text", ["plain"]),
]


@pytest.mark.parametrize(("request_", "location", "expected"), CASES)
def test_texts(request_: Request, location: str, expected: list[str]) -> None:
    assert texts(request_, location) == expected


@pytest.mark.parametrize(
    ("request_", "location"),
    [
        (Request(b"{not json", JSON, ""), "json:text"),
        (Request(b'{"text": "ok", "text": "hidden"}', JSON, ""), "json:text"),
        (Request(b"text=hi", MULTIPART, ""), "form:text"),  # no boundary in the body
        (Request(b"text=%FF%FE", FORM, ""), "form:text"),  # not UTF-8
        (Request(b"\xff\xfe", FORM, ""), "form:text"),
        (Request(b"<text>hi</text>", "application/xml", ""), "form:text"),
        (Request(b"x", "", "text=%C0%AF"), "form:text"),  # over-long UTF-8
        (Request(urlencode({"variables": "{broken"}).encode(), FORM, ""),
         "form:variables|json:input.message.text"),
        (
            Request(multipart(("text", "a", None, None))[:-10], MULTIPART, ""),  # cut short
            "form:text",
        ),
    ],
)
def test_what_cannot_be_read_is_unreadable(request_: Request, location: str) -> None:
    with pytest.raises(Unreadable):
        texts(request_, location)


@pytest.mark.parametrize(
    ("request_", "operation"),
    [
        (Request(b'{"operationName": "SearchTimeline"}', JSON, ""), "SearchTimeline"),
        (Request(b"fb_api_req_friendly_name=CometSearch&doc_id=1", FORM, ""), "CometSearch"),
        (Request(b"", FORM, "operationName=Q"), "Q"),
        (Request(b'{"operationName": "A"}', JSON, "operationName=B"), None),  # ambiguous
        (Request(b"{", JSON, ""), None),
        (Request(b"doc_id=1", FORM, ""), None),
    ],
)
def test_operation_name(request_: Request, operation: str | None) -> None:
    assert operation_name(request_) == operation


def test_every_location_present_is_checked() -> None:
    body = json.dumps({"commentaryV2": {"text": "one"}, "commentary": {"text": "two"}})
    request = Request(body.encode(), JSON, "")
    assert all_texts(request, ["json:commentaryV2.text", "json:commentary.text"]) == ["one", "two"]
    # Blank texts and repeats are dropped.
    request = Request(b'{"a": "x", "b": "x", "c": "  "}', JSON, "")
    assert all_texts(request, ["json:a", "json:b", "json:c"]) == ["x"]


@pytest.mark.parametrize("bad", ["text", "xml:a", "json:", "json:a|", "form:a|yaml:b"])
def test_bad_locations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a text location"):
        parse_location(bad)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (Request(b'{"status": "hi", "media_ids": ["1"]}', JSON, ""), ["image"]),
        (Request(b'{"status": "hi", "media_ids": []}', JSON, ""), []),
        (
            Request(
                json.dumps({"variables": {"media": {"media_entities": [{"id": 1}]}}}).encode(),
                JSON,
                "",
            ),
            ["image"],
        ),
        (
            Request(
                urlencode({"variables": json.dumps({"input": {"attachments": [{"p": 1}]}})})
                .encode(),
                FORM,
                "",
            ),
            ["image"],
        ),
        (
            Request(
                multipart(
                    ("status", "hi", None, None),
                    ("file", b"\x89PNG...", "kid.png", "image/png"),
                    ("file", b"\x00\x00", "clip.mp4", "video/mp4"),
                    ("file", b"%PDF", "a.pdf", "application/pdf"),
                ),
                MULTIPART,
                "",
            ),
            ["image", "video", "file"],
        ),
        (Request(b"status=hi", FORM, ""), []),
    ],
)
def test_attachments(request_: Request, expected: list[str]) -> None:
    assert attachments(request_) == expected

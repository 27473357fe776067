"""Injection: where the tag goes, CSP kept tight, encodings, streaming, the reserved path.

Hook tests run without sockets (mitmproxy's taddons/tflow); the end-to-end runs through
a real gateway are in test_browser_gateway.py.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path

import brotli
import pytest
import zstandard
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from proxy.gateway import csp
from proxy.gateway.inject import (
    Inject,
    decode_html,
    encode_html,
    insert_tag,
    insertion_point,
    meta_policies,
    rewrite,
    scan_response_headers,
    script_tag,
    set_body,
)
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action
from proxy.runtime import Compiled

X = csp.Origin.of("https", "x.com")
ATTRS = {"data-backend": "/__sargs/", "data-platform": "x", "data-lang": "lv"}
TAG = re.compile(r"<script src=\"/__sargs/static/compose-guard\.js\"[^>]*></script>")

# --- pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "before"),
    [
        ("<!DOCTYPE html><html><head><title>t</title></head><body></body></html>", "<title>"),
        ("<!doctype html>\n<HTML lang=lv><HEAD data-x='1'>\n<meta charset=utf-8>", "\n<meta"),
        ("<!DOCTYPE html><html><header>h</header><body><p>x", "<header>"),  # no head: after html
        ("<!DOCTYPE html><p>fragment only", "<p>"),  # after the doctype, never before it
        ("\ufeff<!-- c <head> --><!DOCTYPE html><head><b>", "<b>"),
        ("<html><body><p>&lt;head&gt; <head> in text</p>", "<body>"),  # no head before body
    ],
)
def test_insertion_point(document: str, before: str) -> None:
    at = insertion_point(document)
    assert document[at:].startswith(before)


def test_rewrite_inserts_one_tag_and_leaves_a_tolerant_policy_alone() -> None:
    document = "<!DOCTYPE html><html><head><title>Home</title></head><body>x</body></html>"
    result = rewrite(document, ["default-src 'self'; img-src *"], X, ATTRS)
    assert result.headers == ["default-src 'self'; img-src *"]
    assert result.nonce is None
    assert result.html == (
        "<!DOCTYPE html><html><head>"
        '<script src="/__sargs/static/compose-guard.js" data-backend="/__sargs/" '
        'data-platform="x" data-lang="lv" defer></script>'
        "<title>Home</title></head><body>x</body></html>"
    )


def test_rewrite_reuses_the_page_nonce() -> None:
    header = "script-src 'nonce-Zm9v' 'strict-dynamic'; object-src 'none'; base-uri 'none'"
    result = rewrite("<html><head></head></html>", [header], X, ATTRS)
    assert result.headers == [header]
    assert result.nonce == "Zm9v"
    assert 'nonce="Zm9v" defer></script>' in result.html


def test_rewrite_adjusts_meta_and_header_policies_and_keeps_report_only_out() -> None:
    document = (
        "<!DOCTYPE html><html><head>"
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"script-src 'unsafe-inline' https://cdn.example; connect-src 'none'\">"
        "<meta http-equiv='content-security-policy-report-only' content=\"script-src 'none'\">"
        "</head><body><meta http-equiv=Content-Security-Policy content=\"img-src 'none'\">"
    )
    headers = ["script-src 'self', script-src https://cdn.example", "img-src *"]
    result = rewrite(document, headers, X, ATTRS)
    script = "https://x.com/__sargs/static/compose-guard.js"
    assert result.headers == [
        f"script-src 'self', script-src https://cdn.example {script}",
        "img-src *",
    ]
    metas = meta_policies(result.html)
    assert [m.content for m in metas] == [
        f"script-src 'unsafe-inline' https://cdn.example {script}; "
        "connect-src https://x.com/__sargs/api/"
    ]
    assert "content-security-policy-report-only' content=\"script-src 'none'\"" in result.html
    assert "content=\"img-src 'none'\"" in result.html  # in body: not a policy, untouched


def test_rewrite_escapes_attribute_values() -> None:
    result = rewrite("<head>", [], X, {"data-platform": '"><img src=x onerror=alert(1)>'})
    assert "<img" not in result.html
    assert "&quot;&gt;&lt;img" in result.html


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("utf-8", "Sveiki, Rīga! Ķirbis ✓ 😀"),
        ("windows-1257", "Sveiki, Rīga! Ķirbis"),
        ("iso-8859-1", "Hej på dig, Göteborg"),
        ("utf-16", "Përshëndetje nga Prishtina ✓"),
    ],
)
def test_charsets_survive(charset: str, text: str) -> None:
    document = f"<html><head><title>{text}</title></head><body>{text}</body></html>"
    content = document.encode(charset)
    ctype = f"text/html; charset={charset}"
    decoded, codec = decode_html(content, ctype)
    result = rewrite(decoded, [], X, ATTRS)
    back = encode_html(result.html, codec)
    assert TAG.search(back.decode(charset))
    assert TAG.sub("", back.decode(charset)) == document


def test_response_headers_in_one_pass() -> None:
    fields = (
        (b"Content-Type", b"text/html; charset=utf-8"),
        (b"content-security-policy", b"script-src 'self'"),
        (b"CONTENT-TYPE", b"text/plain"),
        (b"Content-Length", b"12"),
        (b"Content-Security-Policy", b"img-src *"),
        (b"Content-Disposition", b"inline"),
    )
    found = scan_response_headers(fields)
    headers = http.Headers(fields)
    assert found.content_type == headers.get_all("Content-Type")[0]  # the first one wins
    assert found.policies == headers.get_all("Content-Security-Policy")
    assert (found.length, found.disposition, found.encoded) == ("12", "inline", False)
    assert scan_response_headers(((b"Transfer-Encoding", b"chunked"),)).encoded
    assert scan_response_headers(((b"content-encoding", b"gzip"),)).encoded


@pytest.mark.parametrize(
    "fields",
    [
        [(b"Content-Type", b"text/html"), (b"Content-Length", b"5"), (b"X-A", b"1")],
        [(b"Content-Type", b"text/html")],  # no length: added at the end
        [(b"content-length", b"5"), (b"Content-Length", b"5"), (b"X-A", b"1")],  # dup dropped
        [(b"Content-Encoding", b"gzip"), (b"Content-Length", b"5")],
        [(b"Transfer-Encoding", b"chunked")],  # no Content-Length beside a transfer coding
        [(b"Content-Encoding", b"nonsense"), (b"Content-Length", b"5")],
    ],
)
def test_set_body_is_mitmproxys_content_setter(fields: list[tuple[bytes, bytes]]) -> None:
    body = b"<html><head></head>caf\xc3\xa9</html>"
    ours, theirs = (http.Response.make(200, b"hello", fields) for _ in range(2))
    ours.headers.fields = theirs.headers.fields = tuple(fields)
    hinted = http.Response.make(200, b"hello", fields)
    hinted.headers.fields = tuple(fields)
    scanned = scan_response_headers(hinted.headers.fields)
    set_body(ours, body, scan_response_headers(ours.headers.fields).encoded)
    set_body(hinted, body, scanned.encoded, scanned.length_at)  # where Content-Length is
    theirs.content = body
    for response in (ours, hinted):
        assert response.headers.fields == theirs.headers.fields
        assert response.raw_content == theirs.raw_content
        assert response.get_content(strict=False) == body


def test_invalid_bytes_are_kept_exactly() -> None:
    content = b"<html><head><title>\xff\xfe broken \xc3</title></head></html>"
    decoded, codec = decode_html(content, "text/html; charset=utf-8")
    back = encode_html(rewrite(decoded, [], X, ATTRS).html, codec)
    assert TAG.sub("", back.decode("latin-1")).encode("latin-1") == content


# --- hooks ------------------------------------------------------------------------------------


def no_policy() -> Compiled:
    raise AssertionError("serving pages and the script needs no policy")


@pytest.fixture
async def addon(tmp_path: Path) -> AsyncIterator[Inject]:
    script = tmp_path / "compose-guard.js"
    script.write_text("console.log('sargs v1');\n")
    inject = Inject(no_policy, script=script)
    with taddons.context(inject):
        yield inject


def allowed(kind: RequestKind = RequestKind.page, platform: str = "x") -> dict[str, object]:
    return {
        "sargs.identity": Subject("ilze", frozenset({"communicator"})),
        "sargs.platform": platform,
        "sargs.decision": Decision(True, Action.allow, platform, Rule.role, "ok", "communicator"),
        "sargs.kind": kind,
        "sargs.lang": "lv",
    }


def page_flow(
    body: bytes,
    *,
    ctype: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
    metadata: dict[str, object] | None = None,
    path: str = "/home",
) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.scheme, flow.request.host, flow.request.port = "https", "x.com", 443
    flow.request.path = path
    flow.request.headers["Host"] = "x.com"
    flow.metadata.update(allowed() if metadata is None else metadata)
    flow.response = http.Response.make(200, body, {"Content-Type": ctype})
    flow.response.headers.update(headers or {})  # after make(), which sets Content-Length
    return flow


def run(addon: Inject, flow: http.HTTPFlow) -> None:
    addon.responseheaders(flow)
    addon.response(flow)


PAGE = b"<!DOCTYPE html><html><head><title>X</title></head><body>home</body></html>"


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "zstd", None])
def test_compressed_pages_are_injected(addon: Inject, encoding: str | None) -> None:
    flow = page_flow(PAGE)
    if encoding:
        flow.response.headers["Content-Encoding"] = encoding  # type: ignore[union-attr]
        flow.response.content = PAGE  # type: ignore[union-attr]  # encodes as declared
    run(addon, flow)
    response = flow.response
    assert response is not None
    assert not response.stream
    raw = response.raw_content or b""
    assert int(response.headers["Content-Length"]) == len(raw)
    if encoding == "gzip":
        plain = gzip.decompress(raw)
    elif encoding == "br":
        plain = brotli.decompress(raw)
    elif encoding == "zstd":
        plain = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    else:
        plain = response.content or b""
    text = plain.decode()
    assert TAG.search(text)
    assert 'data-platform="x"' in text
    assert 'data-lang="lv"' in text
    assert TAG.sub("", text).encode() == PAGE


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"ctype": "application/json"}, "not html"),
        ({"metadata": {}}, "no decision"),
        ({"metadata": allowed(RequestKind.api)}, "fetch of an html fragment"),
        ({"headers": {"Content-Disposition": "attachment; filename=a.html"}}, "download"),
        ({"metadata": {**allowed(), "sargs.generated": "x"}}, "our own page"),
    ],
)
def test_not_injected(addon: Inject, change: dict[str, object], why: str) -> None:
    flow = page_flow(PAGE, **change)  # type: ignore[arg-type]
    run(addon, flow)
    assert flow.response is not None
    assert flow.response.content == PAGE, why


def test_blocked_flow_is_neither_injected_nor_streamed(addon: Inject) -> None:
    metadata = allowed()
    metadata["sargs.decision"] = Decision(False, Action.block, "x", Rule.role, "no")
    flow = page_flow(PAGE, metadata=metadata)
    run(addon, flow)
    assert flow.response is not None
    assert not flow.response.stream
    assert flow.response.content == PAGE


def test_large_and_non_html_bodies_are_streamed(addon: Inject) -> None:
    video = page_flow(b"", ctype="video/mp4", headers={"Content-Length": "900000000"})
    addon.responseheaders(video)
    assert video.response is not None
    assert video.response.stream is True
    big = page_flow(b"", headers={"Content-Length": str(6 * 1024 * 1024)})
    addon.responseheaders(big)
    assert big.response is not None
    assert big.response.stream is True
    small = page_flow(PAGE)
    addon.responseheaders(small)
    assert small.response is not None
    assert not small.response.stream


async def test_switched_off(addon: Inject) -> None:
    with taddons.context(addon) as tctx:
        tctx.configure(addon, sargs_inject=False)
        flow = page_flow(PAGE)
        run(addon, flow)
        assert flow.response is not None
        assert flow.response.content == PAGE
        assert flow.response.stream is True


def test_csp_header_adjusted_on_the_flow(addon: Inject) -> None:
    header = "script-src 'unsafe-inline' https://abs.twimg.com; connect-src 'self'"
    flow = page_flow(PAGE, headers={"Content-Security-Policy": header,
                                     "Content-Security-Policy-Report-Only": "script-src 'none'"})
    run(addon, flow)
    assert flow.response is not None
    assert flow.response.headers["Content-Security-Policy"] == (
        "script-src 'unsafe-inline' https://abs.twimg.com "
        "https://x.com/__sargs/static/compose-guard.js; connect-src 'self'"
    )
    assert flow.response.headers["Content-Security-Policy-Report-Only"] == "script-src 'none'"


# --- the reserved path ------------------------------------------------------------------------


def reserved(method: str, path: str, headers: dict[str, str] | None = None) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.method = method
    flow.request.scheme, flow.request.host, flow.request.port = "https", "x.com", 443
    flow.request.path = path
    flow.request.headers.update(headers or {})
    flow.metadata.update(allowed(RequestKind.api))
    return flow


def test_script_is_served_with_etag_and_reloaded_when_changed(
    addon: Inject, tmp_path: Path
) -> None:
    flow = reserved("GET", "/__sargs/static/compose-guard.js?v=1")
    addon.request(flow)
    assert flow.response is not None
    assert flow.response.status_code == 200
    assert flow.response.content == b"console.log('sargs v1');\n"
    assert flow.response.headers["Content-Type"].startswith("text/javascript")
    etag = flow.response.headers["ETag"]

    again = reserved("GET", "/__sargs/static/compose-guard.js", {"If-None-Match": etag})
    addon.request(again)
    assert again.response is not None
    assert again.response.status_code == 304

    (tmp_path / "compose-guard.js").write_text("console.log('sargs v2, longer');\n")
    changed = reserved("GET", "/__sargs/static/compose-guard.js", {"If-None-Match": etag})
    addon.request(changed)
    assert changed.response is not None
    assert changed.response.status_code == 200
    assert b"v2" in (changed.response.content or b"")
    assert changed.response.headers["ETag"] != etag


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/__sargs/", 404),
        ("GET", "/__sargs/../etc/passwd", 404),
        ("DELETE", "/__sargs/static/compose-guard.js", 405),
        ("GET", "/__sargs/api/v1/check", 405),
        ("OPTIONS", "/__sargs/api/v1/check", 204),
    ],
)
def test_reserved_path_never_reaches_the_platform(
    addon: Inject, method: str, path: str, status: int
) -> None:
    flow = reserved(method, path, {"Origin": "https://x.com"})
    addon.request(flow)
    assert flow.response is not None
    assert flow.response.status_code == status
    # Responses we made are neither injected nor streamed.
    addon.responseheaders(flow)
    assert not flow.response.stream


def test_other_paths_and_hosts_are_left_alone(addon: Inject) -> None:
    flow = reserved("GET", "/home")
    addon.request(flow)
    assert flow.response is None
    outside = tflow.tflow()
    outside.request.path = "/__sargs/static/compose-guard.js"
    addon.request(outside)  # not a platform host: not ours to answer
    assert outside.response is None



# --- the bytes fast path ----------------------------------------------------------------------

_FRAGMENTS = [
    "<!DOCTYPE html>", "<!doctype HTML public>", "<?xml version='1.0'?>", "<!-- c -->",
    "<!-- <head> <body> -->", "\ufeff", "\xef\xbb\xbf", "\xcf\xbb\xbf", " ", "\n", "\xa0",
    "\x85", "\x1c", "<html>", "<HTML lang=lv>", "<html\xa0lang=lv>", "<htmlx>", "<head>",
    "<HEAD data-x='1'>", "<head\x85>", "<header>", "<headx>", "<title>t</title>",
    "<meta charset=utf-8>", "<meta name=viewport content='width=device-width'>",
    "<meta\xa0charset=x>", '<meta http-equiv="Content-Security-Policy" content="img-src *">',
    "<meta http-equiv=content-security-policy-report-only content=\"script-src 'none'\">",
    "<meta http-equiv=&#67;ontent-Security-Policy content=x>", "<body>", "<BODY class=a>",
    "<body\x0c>", "<body\xa0x>", "<bodyx>", "<p>text</p>", "</head>", "é", "\xff", "<",
    "<html <head>", "<html x='<body>'>", "<head <body>", "<meta content='<body>'>",
    "<meta http-equiv=content-security-policy content='<b>'>", "<!doctype <head>",
    "<meta HTTP-EQUIV=Content-Security-Policy content=a>", ">", "<HTML\x85>", "\t",
]


def _same_as_rewrite(document: str) -> None:
    """``insert_tag`` on the page's bytes gives what ``rewrite`` gives on its latin-1 view,
    or None exactly when ``rewrite`` has a ``<meta>`` policy to adjust."""
    if any(ord(c) > 0xFF for c in document):
        return  # (not a latin-1 view of any bytes)
    content = document.encode("latin-1")
    tag = script_tag(ATTRS, None).encode("latin-1")
    ours = insert_tag(content, tag)
    if meta_policies(document):
        assert ours is None, document
    else:
        assert ours == rewrite(document, [], X, ATTRS).html.encode("latin-1"), document


@pytest.mark.parametrize("byte", range(256))
def test_insert_tag_reads_every_byte_as_the_latin1_view_does(byte: int) -> None:
    c = chr(byte)
    for document in (
        f"{c}<html><head>", f"<!doctype html>{c}{c}<html>x", f"{c}\xbb\xbf<head>",
        f"<html><head{c}x><body>", f"<html{c}a><body>", f"<html><body{c}<head>",
        f"<head><meta{c}http-equiv=Content-Security-Policy content=a><body>",
        f"<HeAd{c}>", f"<!--{c}--><head>", f"<?xml{c}?><html>",
    ):
        _same_as_rewrite(document)


def test_insert_tag_is_rewrite_on_bytes_for_random_pages() -> None:
    rng = random.Random(2)
    for _ in range(6000):
        _same_as_rewrite("".join(rng.choices(_FRAGMENTS, k=rng.randint(0, 12))))


@pytest.mark.parametrize(
    ("headers", "page"),
    [
        ({}, PAGE),  # the fast path
        ({}, PAGE.replace(b"<title>", b"<meta http-equiv=Content-Security-Policy "
                                       b"content=\"script-src 'none'\"><title>")),
        ({"Content-Security-Policy": "script-src 'none'"}, PAGE),
        ({}, PAGE.replace(b"<title>X", b"<title>\xc4\xb7 \xff")),
    ],
)
def test_page_hooks_give_what_rewrite_gives(
    addon: Inject, headers: dict[str, str], page: bytes
) -> None:
    flow = page_flow(page, headers=headers)
    run(addon, flow)
    response = flow.response
    assert response is not None
    expected = rewrite(page.decode("latin-1"), list(headers.values()), X,
                       {**ATTRS, "data-account": "personal"})
    assert response.raw_content == expected.html.encode("latin-1")
    assert response.headers.get_all("Content-Security-Policy") == expected.headers
    assert response.headers["Content-Length"] == str(len(response.raw_content or b""))
    assert flow.metadata["sargs.injected"] is True


def test_set_body_with_a_stale_length_position_still_sets_the_length() -> None:
    response = http.Response.make(200, b"hello", {"Content-Type": "text/html"})
    fields = response.headers.fields
    assert fields[1][0].lower() == b"content-length"
    set_body(response, b"<p>longer</p>", False, 0)  # (headers changed since the scan)
    assert response.headers.fields == (fields[0], (fields[1][0], b"13"))
    set_body(response, b"<p>x</p>", False, 7)  # out of range
    assert response.headers["Content-Length"] == "8"

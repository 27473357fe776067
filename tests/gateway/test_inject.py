"""Injection hooks on real mitmproxy flows: which pages get the tag, compressed and
policy-carrying pages, and everything else streamed untouched (proxy/gateway/inject.py)."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator

import brotli
import pytest
import zstandard
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from proxy.gateway.flowinfo import FlowInfo, info
from proxy.gateway.inject import Inject
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action

TAG = re.compile(r"<script src=\"/__sargs/static/compose-guard\.js\"[^>]*></script>")
PAGE = b"<!DOCTYPE html><html><head><title>X</title></head><body>home</body></html>"


@pytest.fixture
async def addon() -> AsyncIterator[Inject]:
    inject = Inject()
    with taddons.context(inject):
        yield inject


def allowed(kind: RequestKind = RequestKind.page, platform: str = "x") -> FlowInfo:
    """The record the access add-on leaves for an allowed request."""
    return FlowInfo(
        subject=Subject("ilze", frozenset({"communicator"})), platform=platform, host="x.com",
        kind=kind, lang="lv",
        decision=Decision(True, Action.allow, platform, Rule.role, "ok", "communicator"),
    )


def _generated() -> FlowInfo:
    record = allowed()
    record.generated = "reserved"
    return record


def page_flow(
    body: bytes,
    *,
    ctype: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
    record: FlowInfo | None = None,
    path: str = "/home",
) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.scheme, flow.request.host, flow.request.port = "https", "x.com", 443
    flow.request.path = path
    flow.request.headers["Host"] = "x.com"
    flow.metadata["sargs"] = allowed() if record is None else record
    flow.response = http.Response.make(200, body, {"Content-Type": ctype})
    flow.response.headers.update(headers or {})  # after make(), which sets Content-Length
    return flow


def run(addon: Inject, flow: http.HTTPFlow) -> None:
    addon.responseheaders(flow)
    addon.response(flow)


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
        ({"record": FlowInfo()}, "no decision"),
        ({"record": allowed(RequestKind.api)}, "fetch of an html fragment"),
        ({"headers": {"Content-Disposition": "attachment; filename=a.html"}}, "download"),
        ({"record": _generated()}, "our own page"),
    ],
)
def test_not_injected(addon: Inject, change: dict[str, object], why: str) -> None:
    flow = page_flow(PAGE, **change)  # type: ignore[arg-type]
    run(addon, flow)
    assert flow.response is not None
    assert flow.response.content == PAGE, why


def test_blocked_flow_is_neither_injected_nor_streamed(addon: Inject) -> None:
    record = allowed()
    record.decision = Decision(False, Action.block, "x", Rule.role, "no")
    record.generated = "access"
    flow = page_flow(PAGE, record=record)
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


def test_a_meta_policy_is_adjusted_through_the_hooks(addon: Inject) -> None:
    page = PAGE.replace(b"<title>", b"<meta http-equiv=Content-Security-Policy "
                                    b"content=\"script-src 'none'\"><title>")
    flow = page_flow(page)
    run(addon, flow)
    assert flow.response is not None
    text = (flow.response.content or b"").decode()
    assert len(TAG.findall(text)) == 1
    assert ('content="script-src https://x.com/__sargs/static/compose-guard.js"' in text)
    assert "'none'" not in text
    assert int(flow.response.headers["Content-Length"]) == len(flow.response.raw_content or b"")
    assert info(flow).injected is True


def test_odd_bytes_come_back_exactly(addon: Inject) -> None:
    page = PAGE.replace(b"<title>X", b"<title>\xc4\xb7 \xff")  # UTF-8 and an invalid byte
    flow = page_flow(page)
    run(addon, flow)
    assert flow.response is not None
    raw = flow.response.raw_content or b""
    assert TAG.sub("", raw.decode("latin-1")).encode("latin-1") == page
    assert int(flow.response.headers["Content-Length"]) == len(raw)

"""The content script's tag in a page, as text: where it goes, the page's policies, and
charsets that come back byte for byte (proxy/gateway/page.py)."""

from __future__ import annotations

import re

import pytest

from proxy.gateway import csp
from proxy.gateway.page import decode_html, encode_html, insertion_point, meta_policies, rewrite

X = csp.Origin.of("https", "x.com")
ATTRS = {"data-backend": "/__sargs/", "data-platform": "x", "data-lang": "lv"}
TAG = re.compile(r"<script src=\"/__sargs/static/compose-guard\.js\"[^>]*></script>")


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


def test_invalid_bytes_are_kept_exactly() -> None:
    content = b"<html><head><title>\xff\xfe broken \xc3</title></head></html>"
    decoded, codec = decode_html(content, "text/html; charset=utf-8")
    back = encode_html(rewrite(decoded, [], X, ATTRS).html, codec)
    assert TAG.sub("", back.decode("latin-1")).encode("latin-1") == content

"""The content script's tag in an HTML page, as text (pure: no flows, no I/O).

:func:`decode_html` turns a page's bytes into text, :func:`rewrite` inserts one tag right
after ``<head>`` (after ``<html>`` or the prologue when there is no head; never before the
doctype, which would switch the page to quirks mode)::

    <script src="/__sargs/static/compose-guard.js" data-backend="/__sargs/"
            data-platform="x" data-lang="lv" data-account="personal" data-readonly="false"
            data-guidelines="https://sargs.example/guidelines?lang=lv" defer></script>

and adjusts every enforced Content-Security-Policy of the page (headers and ``<meta
http-equiv>``) with :mod:`proxy.gateway.csp`, so that the script runs and nothing else is
loosened; the tag carries the page's own nonce when the policy uses one.
:func:`encode_html` turns the text back into bytes.

Pages in an ASCII-compatible charset (UTF-8, ISO-8859-*, windows-125x …) are read as
latin-1, which maps every byte to one character and back: their bytes are kept exactly,
even invalid ones, and our ASCII-only tag lands in the right place. Other charsets
(UTF-16, …) are decoded and encoded with their codec.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from mitmproxy.net.http.headers import infer_content_encoding, parse_content_type

from proxy.gateway import csp

RESERVED = "/__sargs/"
"""The path prefix the gateway answers itself on every platform host."""
SCRIPT_PATH = csp.SCRIPT_PATH

_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
_HTML = re.compile(r"<html(?:\s[^>]*)?>", re.IGNORECASE)
_BODY = re.compile(r"<body[\s>]", re.IGNORECASE)
_PROLOGUE = re.compile(
    r"(?:\ufeff|\xef\xbb\xbf|\s+|<!--.*?-->|<!doctype[^>]*>|<\?xml[^>]*\?>)*",
    re.IGNORECASE | re.DOTALL,
)
"""What may come before ``<html>``: byte-order marks (as text, and as UTF-8 read as
latin-1), white space, comments, the doctype, an XML declaration."""
_META = re.compile(r"<meta\s[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")


class Rewritten(NamedTuple):
    html: str
    headers: list[str]
    """The Content-Security-Policy header values, adjusted (same count and order)."""
    nonce: str | None


def insertion_point(document: str) -> int:
    """Where our tag goes: after ``<head>``, else after ``<html>``, else after the prologue.

    Never before the doctype (that would switch the page to quirks mode).
    """
    return _insertion_point(document, None)


def _body_start(document: str, offset: int = 0) -> int:
    body = _BODY.search(document, offset)
    return body.start() if body else len(document)


def _insertion_point(document: str, body_start: int | None) -> int:
    """``insertion_point``; ``body_start``: where ``<body`` starts, when already known."""
    start = _PROLOGUE.match(document)
    offset = start.end() if start else 0
    if body_start is None or body_start < offset:  # (a <body inside the prologue: look on)
        body_start = _body_start(document, offset)
    limit = body_start
    for pattern in (_HEAD, _HTML):
        found = pattern.search(document, offset, limit)
        if found:
            return found.end()
    return offset


def _attributes(tag: str) -> list[tuple[str, str, tuple[int, int] | None]]:
    """(name, value, span of the value incl. quotes) of an HTML start tag's attributes."""
    out: list[tuple[str, str, tuple[int, int] | None]] = []
    inner_start = tag.find(" ")
    for m in _ATTR.finditer(tag, inner_start if inner_start > 0 else 0):
        name = m.group(1).lower()
        raw = m.group(2)
        if raw is None:
            out.append((name, "", None))
            continue
        value = raw[1:-1] if raw[:1] in "\"'" else raw
        out.append((name, html.unescape(value), m.span(2)))
    return out


class MetaPolicy(NamedTuple):
    start: int
    end: int
    tag: str
    content: str
    span: tuple[int, int]
    """Span of the content attribute's value inside ``tag``."""


def meta_policies(document: str, body_start: int | None = None) -> list[MetaPolicy]:
    """Enforced ``<meta http-equiv="Content-Security-Policy">`` tags before ``<body>``
    (``body_start``: where it starts, when already known)."""
    limit = _body_start(document) if body_start is None else body_start
    out = []
    for m in _META.finditer(document, 0, limit):
        policy = _meta_policy(m.group(0))
        if policy is not None:
            out.append(MetaPolicy(m.start(), m.end(), m.group(0), *policy))
    return out


def _meta_policy(tag: str) -> tuple[str, tuple[int, int]] | None:
    """An enforced policy's text and the span of its content attribute's value in ``tag``
    (a ``<meta …>`` tag), or None when the tag is no ``http-equiv`` CSP."""
    attrs = _attributes(tag)
    names = {name: (value, span) for name, value, span in reversed(attrs)}
    equiv = names.get("http-equiv", ("", None))[0].strip().lower()
    content, span = names.get("content", ("", None))
    if equiv == "content-security-policy" and span is not None:
        return content, span
    return None


def tag_attributes(platform: str, lang: str, *, readonly: bool = False,
                   guidelines: str = "") -> dict[str, str]:
    """The ``data-*`` attributes of our tag for a page of ``platform`` in ``lang``, as the
    compose guard reads them (``extension/guard/client.js``): ``data-readonly="true"``
    when the user may read the platform but not post (the guard says so before typing
    starts), ``data-guidelines`` the service's guidelines page (omitted when unknown)."""
    attrs = {
        "data-backend": RESERVED,
        "data-platform": platform,
        "data-lang": lang,
        "data-account": "personal",
        "data-readonly": "true" if readonly else "false",
    }
    if guidelines:
        attrs["data-guidelines"] = guidelines
    return attrs


def script_tag(attrs: dict[str, str], nonce: str | None) -> str:
    return _script_tag(tuple(attrs.items()), nonce)


@lru_cache(maxsize=1024)
def _script_tag(attrs: tuple[tuple[str, str], ...], nonce: str | None) -> str:
    """``script_tag``, remembered per attributes and nonce (the same for every page of a
    platform and language without a nonce)."""
    parts = [f'src="{SCRIPT_PATH}"']
    parts += [f'{name}="{html.escape(value, quote=True)}"' for name, value in attrs]
    if nonce is not None:
        parts.append(f'nonce="{html.escape(nonce, quote=True)}"')
    return f"<script {' '.join(parts)} defer></script>"


def rewrite(
    document: str,
    header_values: list[str],
    origin: csp.Origin | Callable[[], csp.Origin],
    attrs: dict[str, str],
) -> Rewritten:
    """Insert our tag and adjust every enforced CSP of the page (headers and meta tags).

    ``origin`` may be a callable: it is only needed (and called) when the page has a CSP.
    """
    body_start = _body_start(document)
    metas = meta_policies(document, body_start)
    if not header_values and not metas:  # no policy to adjust: the common, cheap case
        at = _insertion_point(document, body_start)
        return Rewritten(document[:at] + script_tag(attrs, None) + document[at:], [], None)
    if callable(origin):
        origin = origin()
    header_policies = [csp.split_header(value) for value in header_values]
    texts = [text for policies in header_policies for text in policies]
    texts += [meta.content for meta in metas]
    result = csp.adjust(texts, origin)
    adjusted = iter(result.policies)
    headers = []
    for policies, original in zip(header_policies, header_values, strict=True):
        new = [next(adjusted) for _ in policies]
        headers.append(original if new == policies else ", ".join(new))
    pieces: list[str] = []
    cursor = 0
    for meta in metas:
        text = next(adjusted)
        if text == meta.content:
            continue
        a, b = meta.span
        tag = f'{meta.tag[:a]}"{html.escape(text, quote=True)}"{meta.tag[b:]}'
        pieces += [document[cursor:meta.start], tag]
        cursor = meta.end
    pieces.append(document[cursor:])
    document = "".join(pieces)
    at = insertion_point(document)
    tag = script_tag(attrs, result.nonce)
    return Rewritten(document[:at] + tag + document[at:], headers, result.nonce)


@lru_cache(maxsize=64)
def _ascii_compatible(charset: str) -> bool:
    try:
        codec = codecs.lookup(charset)
        return codec.encode("<head>")[0] == b"<head>" and codec.decode(b"<head>")[0] == "<head>"
    except (LookupError, UnicodeError, ValueError):
        return True  # unknown: treat as bytes (latin-1 view keeps them exactly)


def is_page_type(content_type: str) -> bool:
    """An HTML document."""
    return content_type.lower().startswith(("text/html", "application/xhtml+xml"))


def decode_html(content: bytes, content_type: str) -> tuple[str, str | None]:
    """The document as text and the codec to encode it back (``None``: latin-1 view).

    ASCII-compatible charsets (UTF-8, ISO-8859-*, windows-125x …) are viewed as latin-1,
    which maps every byte to one character and back: the page's bytes are kept exactly,
    even invalid ones, and our ASCII-only tag lands in the right place.
    """
    charset = page_charset(content, content_type)
    if charset is None:
        return content.decode("latin-1"), None
    return content.decode(charset, "replace"), charset


def page_charset(content: bytes, content_type: str) -> str | None:
    """The page's charset (from Content-Type, else from the page: a BOM or ``<meta
    charset>``), or None when it is ASCII-compatible (read as latin-1)."""
    declared, charset = _declared_charset(content_type)
    if not declared:
        charset = infer_content_encoding(content_type, content)
    return None if _ascii_compatible(charset) else charset


@lru_cache(maxsize=256)
def _declared_charset(content_type: str) -> tuple[bool, str]:
    """Whether Content-Type names a charset, and the codec for it (remembered per header
    value: a site sends the same few)."""
    parsed = parse_content_type(content_type)
    declared = parsed is not None and bool(parsed[2].get("charset"))
    return declared, infer_content_encoding(content_type) if declared else ""


def encode_html(document: str, codec: str | None) -> bytes:
    """``decode_html`` undone: the page's bytes, with what was changed in its text."""
    return document.encode(codec or "latin-1")

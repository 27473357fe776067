"""Content-script injection into allowed platform pages, and the reserved ``/__sargs/`` path.

What it does (docs/injection.md explains why):

- On an allowed platform page load (``sargs.kind`` is ``page``: a navigation, not a fetch of
  an HTML fragment) answered 2xx with ``text/html``, it inserts one tag right after
  ``<head>`` (after ``<html>`` or the doctype when there is no head)::

      <script src="/__sargs/static/compose-guard.js" data-backend="/__sargs/"
              data-platform="x" data-lang="lv" data-account="personal" defer></script>

  and adjusts the page's Content-Security-Policy (headers and ``<meta http-equiv>``) with
  :mod:`proxy.gateway.csp` so the script runs and nothing else is loosened; the tag
  carries the page's own nonce when the policy uses one. Bodies are decoded and encoded
  again through mitmproxy (gzip, br, deflate, zstd), charsets are kept byte for byte, and
  Content-Length follows. A page in an ASCII-compatible charset with no policy to adjust
  (the common case) gets its tag inserted into its bytes (``insert_tag``: the same bytes
  as ``rewrite`` on its latin-1 view, without decoding and encoding it).
- Everything else of an allowed platform (video, images, scripts, JSON, and pages larger
  than ``sargs_inject_max_bytes``) is streamed through, never buffered.
- The reserved path on the platform's own host is answered by the gateway and never
  reaches the platform: ``GET /__sargs/static/compose-guard.js`` serves
  the guard's parts joined (:mod:`proxy.guardscript`; reloaded when they change, with an ETag), and
  ``POST /__sargs/api/v1/check`` is checked in-process with the policy's engine (the
  same engine the service runs; the gateway knows the user's roles, so it sets
  ``official_allowed`` itself, and checks keep working when the service is away).
"""

from __future__ import annotations

import codecs
import html
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from mitmproxy import ctx, http
from mitmproxy.net.http.headers import infer_content_encoding, parse_content_type
from pydantic import ValidationError

from proxy.compliance.model import CheckRequest
from proxy.gateway import csp
from proxy.gateway.posts import official_allowed
from proxy.guardscript import GuardScript
from proxy.policy.decide import Decision, RequestKind, Subject
from proxy.runtime import Compiled

log = logging.getLogger("sargs.inject")

RESERVED = "/__sargs/"
_RESERVED_BYTES = RESERVED.encode()
SCRIPT_PATH = csp.SCRIPT_PATH
CHECK_PATH = "/__sargs/api/v1/check"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
GENERATED = "sargs.generated"
"""``flow.metadata`` key set on responses a Sargs addon made (never injected, never streamed)."""
_JUDGED = "sargs.inject.judged"
"""``flow.metadata``: the response headers ``responseheaders`` judged, kept for ``response``."""
_PAGE = RequestKind.page
"""(An enum member read from its class costs as much as a dict look-up and a call.)"""

# --- pure HTML rewriting ----------------------------------------------------------------------

_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
_HTML = re.compile(r"<html(?:\s[^>]*)?>", re.IGNORECASE)
_BODY = re.compile(r"<body[\s>]", re.IGNORECASE)
_PROLOGUE = re.compile(
    r"(?:\ufeff|\xef\xbb\xbf|\s+|<!--.*?-->|<!doctype[^>]*>|<\?xml[^>]*\?>)*",
    re.IGNORECASE | re.DOTALL,
)
_META = re.compile(r"<meta\s[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")

# The same expressions over a page's bytes (``insert_tag``): each matches exactly where
# its text twin matches in the page's latin-1 view (``decode_html``). There ``\s`` also
# matches \x1c-\x1f, \x85 and \xa0, and ``\xef`` also matches ``\xcf`` (ï, Ï) under
# IGNORECASE; no other latin-1 character folds to an ASCII letter, and U+FEFF is not in
# latin-1. (tests/gateway/test_inject.py checks every byte value.)
_S = rb"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0"
_HEAD_B = re.compile(rb"<head(?:[" + _S + rb"][^>]*)?>", re.IGNORECASE)
_HTML_B = re.compile(rb"<html(?:[" + _S + rb"][^>]*)?>", re.IGNORECASE)
_BODY_B = re.compile(rb"<body[" + _S + rb">]", re.IGNORECASE)
_PROLOGUE_PART = (
    rb"(?:[\xcf\xef]\xbb\xbf|[" + _S + rb"]+|<!--.*?-->|<!doctype[^>]*>|<\?xml[^>]*\?>)"
)
_PROLOGUE_B = re.compile(_PROLOGUE_PART + rb"*", re.IGNORECASE | re.DOTALL)
_META_B = re.compile(rb"<meta[" + _S + rb"][^>]*>", re.IGNORECASE)
_META_OR_BODY_B = re.compile(rb"<(?:(meta)[" + _S + rb"][^>]*>|body[" + _S + rb">])",
                             re.IGNORECASE)
"""``_META_B`` and ``_BODY_B`` in one search: the metas before ``<body``, then ``<body``."""
_USUAL_START_B = re.compile(
    _PROLOGUE_PART + rb"*+(?:<html(?:[" + _S + rb"][^<>]*)?>)?[" + _S + rb"]*+"
    rb"<head(?:[" + _S + rb"][^<>]*)?>",
    re.IGNORECASE | re.DOTALL,
)
"""The start of most pages: the prologue, maybe ``<html …>``, then ``<head …>``. No ``<``
inside those tags, so neither ``<head`` nor ``<body`` can start before its end: when it
matches, it ends where ``_insertion_point`` would insert."""


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


def script_tag(attrs: dict[str, str], nonce: str | None) -> str:
    start = _script_start(tuple(attrs.items()))
    if nonce is not None:
        return f'{start} nonce="{html.escape(nonce, quote=True)}" defer></script>'
    return f"{start} defer></script>"


@lru_cache(maxsize=1024)
def _script_start(attrs: tuple[tuple[str, str], ...]) -> str:
    """``<script src=… data-…=…`` (the same for every page of a platform and language)."""
    parts = [f'src="{SCRIPT_PATH}"']
    parts += [f'{name}="{html.escape(value, quote=True)}"' for name, value in attrs]
    return f"<script {' '.join(parts)}"


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


def insert_tag(content: bytes, tag: bytes) -> bytes | None:
    """``rewrite`` of a page without Content-Security-Policy headers, done on its bytes
    (an ASCII-compatible charset: ``page_charset`` is None): the bytes ``rewrite`` and
    ``encode_html`` would give, or None when the page has a ``<meta>`` policy to adjust
    (then ``rewrite`` does all of it). The common case, so no decoding, no encoding and
    no lists; on most pages two C-speed searches (``_insert_tag`` does the rest)."""
    pos = 0
    while True:
        found = _META_OR_BODY_B.search(content, pos)
        if found is None or found.group(1) is None:  # <body, or the end: no meta after
            break
        meta = found.group()
        if meta.find(b"<", 1) >= 0:  # (a <body may start inside it: the long way)
            return _insert_tag(content, tag)
        # A policy needs an http-equiv attribute (names are never entity-encoded).
        if b"http-equiv" in meta.lower() and _meta_policy(meta.decode("latin-1")):
            return None
        pos = found.end()
    usual = _USUAL_START_B.match(content)
    if usual is None:
        return _insert_tag(content, tag)
    at = usual.end()
    return content[:at] + tag + content[at:]


def _insert_tag(content: bytes, tag: bytes) -> bytes | None:
    """``insert_tag`` step by step, as ``rewrite`` does it (any page)."""
    body = _BODY_B.search(content)
    body_start = body.start() if body else len(content)
    for meta in _META_B.finditer(content, 0, body_start):
        if _meta_policy(meta.group().decode("latin-1")) is not None:
            return None
    prologue = _PROLOGUE_B.match(content)
    offset = prologue.end() if prologue else 0
    if body_start < offset:  # (a <body inside the prologue: look on, as rewrite does)
        body = _BODY_B.search(content, offset)
        body_start = body.start() if body else len(content)
    found = _HEAD_B.search(content, offset, body_start) or _HTML_B.search(
        content, offset, body_start)
    at = found.end() if found else offset
    return content[:at] + tag + content[at:]


@lru_cache(maxsize=64)
def _ascii_compatible(charset: str) -> bool:
    try:
        codec = codecs.lookup(charset)
        return codec.encode("<head>")[0] == b"<head>" and codec.decode(b"<head>")[0] == "<head>"
    except (LookupError, UnicodeError, ValueError):
        return True  # unknown: treat as bytes (latin-1 view keeps them exactly)


@lru_cache(maxsize=256)
def _is_page_type(content_type: str) -> bool:
    """An HTML document (remembered per Content-Type value)."""
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
    """The page's charset, or None when it is ASCII-compatible (viewed as latin-1, or
    rewritten as bytes: ``insert_tag``)."""
    declared, charset = _declared_page_charset(content_type)
    if declared:
        return charset
    charset = infer_content_encoding(content_type, content)
    return None if _ascii_compatible(charset) else charset


@lru_cache(maxsize=256)
def _declared_page_charset(content_type: str) -> tuple[bool, str | None]:
    """Whether the header names a charset, and then ``page_charset``'s answer (the body
    is never looked at), remembered per Content-Type value."""
    parsed = parse_content_type(content_type)
    if parsed is not None and parsed[2].get("charset"):
        charset = infer_content_encoding(content_type)
        return True, None if _ascii_compatible(charset) else charset
    return False, None


def encode_html(document: str, codec: str | None) -> bytes:
    return document.encode(codec or "latin-1")


class ResponseHeaders(NamedTuple):
    """The response headers injection reads, found in one pass (first occurrence wins,
    like ``Headers.get``; every Content-Security-Policy, like ``get_all``)."""

    content_type: str
    disposition: str
    length: str
    encoded: bool
    """A Content-Encoding or Transfer-Encoding header is present."""
    policies: list[str]
    length_at: int = -1
    """Where the only Content-Length field is (-1: none, or several): for ``set_body``."""


_LENGTH = b"content-length"
_TYPE, _POLICY, _DISPOSITION, _LENGTH_FIELD, _CODING = range(5)
_FIELDS = {
    b"content-type": _TYPE,
    b"content-security-policy": _POLICY,
    b"content-disposition": _DISPOSITION,
    _LENGTH: _LENGTH_FIELD,
    b"content-encoding": _CODING,
    b"transfer-encoding": _CODING,
}
"""The header names injection reads (lower case), by what it reads them for."""
_response_headers = tuple.__new__
"""``ResponseHeaders(...)`` without its Python-level ``__new__`` (every field given)."""


def scan_response_headers(fields: tuple[tuple[bytes, bytes], ...]) -> ResponseHeaders:
    """One pass over raw header fields (each ``Headers.get`` scans them all again and
    converts every name); one dict look-up per field that is none of ours."""
    ctype = disposition = length = None
    encoded = False
    policies: list[str] = []
    length_at = at = -1
    wanted = _FIELDS.get
    for name, value in fields:
        at += 1
        kind = wanted(name.lower())
        if kind is None:
            continue
        if kind == _TYPE:
            if ctype is None:
                ctype = value.decode("latin-1")
        elif kind == _POLICY:
            policies.append(value.decode("utf-8", "surrogateescape"))
        elif kind == _DISPOSITION:
            if disposition is None:
                disposition = value.decode("latin-1")
        elif kind == _LENGTH_FIELD:
            if length is None:
                length = value.decode("latin-1")
                length_at = at
            else:
                length_at = -1  # several: set_body drops the others
        else:
            encoded = True
    return _response_headers(ResponseHeaders, (
        ctype or "", disposition or "", length or "", encoded, policies, length_at))


def set_body(response: http.Response, body: bytes, encoded: bool, length_at: int = -1) -> None:
    """``response.content = body``; for a body without Content- or Transfer-Encoding
    (``encoded`` false) the same result in one pass over the headers: the body as is,
    Content-Length set where the first one was (others dropped) or added at the end.
    ``length_at``: where the only Content-Length field is, when known (``ResponseHeaders``):
    then only that field is replaced."""
    if encoded:
        response.content = body
        return
    length = str(len(body)).encode()
    data = response.data
    old = data.headers.fields
    if 0 <= length_at < len(old) and old[length_at][0].lower() == _LENGTH:
        data.content = body
        data.headers.fields = (*old[:length_at], (old[length_at][0], length),
                               *old[length_at + 1:])
        return
    fields: list[tuple[bytes, bytes]] = []
    found = False
    for field in response.headers.fields:
        if field[0].lower() == _LENGTH:
            if not found:
                fields.append((field[0], length))
                found = True
        else:
            fields.append(field)
    if not found:
        fields.append((_LENGTH, length))
    response.raw_content = body
    response.headers.fields = tuple(fields)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- the addon --------------------------------------------------------------------------------


def _json(status: int, payload: dict[str, Any], **headers: str) -> http.Response:
    return http.Response.make(
        status,
        json.dumps(payload, ensure_ascii=False).encode(),
        {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
         **headers},
    )


def page_origin(flow: http.HTTPFlow) -> csp.Origin:
    """The page's origin as the browser sees it (not where the gateway sends the request)."""
    request = flow.request
    scheme = "https" if flow.client_conn.tls_established else request.scheme
    authority = request.host_header or request.authority or request.host
    host, _, port = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
    if not host:
        host, port = authority, ""
    return csp.Origin.of(scheme, host, int(port) if port.isdigit() else None)


class Inject:
    """Injects the content script and answers ``/__sargs/`` on platform hosts."""

    def __init__(
        self,
        compiled: Callable[[], Compiled],
        *,
        script: Path | None = None,
        max_body_bytes: int = 64 * 1024,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.compiled = compiled
        self.now = now
        self.script = GuardScript([script] if script else None)  # None: extension/guard/*
        self.max_body_bytes = max_body_bytes
        self.enabled = True
        self.max_bytes = DEFAULT_MAX_BYTES
        self._tags: dict[tuple[str, str], bytes] = {}

    def load(self, loader: Any) -> None:
        loader.add_option(
            "sargs_inject", bool, True,
            "Inject the Sargs content script into allowed platform pages.",
        )
        loader.add_option(
            "sargs_inject_max_bytes", int, DEFAULT_MAX_BYTES,
            "Pages larger than this (bytes, as sent) are streamed without injection.",
        )

    def configure(self, updated: set[str]) -> None:
        if "sargs_inject" in updated:
            self.enabled = bool(ctx.options.sargs_inject)
        if "sargs_inject_max_bytes" in updated:
            value = int(ctx.options.sargs_inject_max_bytes)
            if value <= 0:
                from mitmproxy import exceptions

                raise exceptions.OptionsError(  # type: ignore[no-untyped-call]
                    "sargs_inject_max_bytes must be positive"
                )
            self.max_bytes = value

    # -- the reserved path -------------------------------------------------------------------

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        # The raw path, as ``path`` would decode it (utf-8 keeps an ASCII prefix): every
        # request to a platform passes here.
        if not flow.request.data.path.startswith(_RESERVED_BYTES):
            return
        if "sargs.platform" not in flow.metadata:
            return  # not a platform host (the access addon marks every one it lets through)
        flow.metadata[GENERATED] = "inject"
        path = flow.request.path.split("?", 1)[0]
        method = flow.request.method
        if path == SCRIPT_PATH and method in ("GET", "HEAD"):
            flow.response = self._serve_script(flow)
        elif path == CHECK_PATH and method == "OPTIONS":
            flow.response = http.Response.make(
                204, b"", {"Allow": "POST, OPTIONS", **self._cors(flow)}
            )
        elif path == CHECK_PATH and method == "POST":
            flow.response = self._check(flow)
        elif path in (SCRIPT_PATH, CHECK_PATH):
            flow.response = _json(405, {"error": f"method {method} not allowed"})
        else:
            flow.response = _json(404, {"error": f"no such Sargs path: {path}"})

    def _serve_script(self, flow: http.HTTPFlow) -> http.Response:
        found = self.script.get()
        if found is None:
            return _json(404, {"error": "content script not installed"})
        body, etag = found
        headers = {
            "Content-Type": "text/javascript; charset=utf-8",
            "ETag": etag,
            "Cache-Control": "max-age=300",
            "X-Content-Type-Options": "nosniff",
        }
        if etag in flow.request.headers.get("If-None-Match", ""):
            return http.Response.make(304, b"", headers)
        response = http.Response.make(200, body, headers)
        if flow.request.method == "HEAD":
            response.content = b""
            response.headers["Content-Length"] = str(len(body))
        return response

    def _cors(self, flow: http.HTTPFlow) -> dict[str, str]:
        origin = flow.request.headers.get("Origin", "")
        host = page_origin(flow).host
        if not origin or origin.split("://", 1)[-1].split(":", 1)[0].lower() != host:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def _check(self, flow: http.HTTPFlow) -> http.Response:
        raw = flow.request.get_content(strict=False) or b""
        if len(raw) > self.max_body_bytes:
            limit = self.max_body_bytes
            return _json(413, {"error": f"request body too large: at most {limit} bytes"})
        try:
            data = json.loads(raw)
        except ValueError as exc:
            return _json(400, {"error": f"body is not valid JSON: {exc}"})
        if not isinstance(data, dict):
            return _json(422, {"error": "invalid request: (body)", "details": [
                {"field": "(body)", "message": "must be a JSON object"}]})
        compiled = self.compiled()
        subject = flow.metadata.get("sargs.identity")
        data.setdefault("platform", flow.metadata.get("sargs.platform"))
        data.setdefault("lang", flow.metadata.get("sargs.lang"))
        data.setdefault("at", self.now().isoformat())
        # Never trusted from the page: the gateway knows the user's roles.
        data["official_allowed"] = (
            official_allowed(compiled, subject) if isinstance(subject, Subject) else None
        )
        try:
            check = CheckRequest.model_validate(data)
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in e["loc"]) or "(body)",
                 "message": str(e["msg"]).removeprefix("Value error, ")}
                for e in exc.errors()
            ]
            fields = ", ".join(d["field"] for d in details)
            return _json(422, {"error": f"invalid request: {fields}", "details": details})
        result = compiled.engine.check(check, compiled.version)
        return http.Response.make(
            200,
            result.model_dump_json().encode(),
            {"Content-Type": "application/json", "Cache-Control": "no-store", **self._cors(flow)},
        )

    # -- pages -------------------------------------------------------------------------------

    def _candidate(
        self, flow: http.HTTPFlow, response: http.Response, judged: Any = None
    ) -> ResponseHeaders | None:
        """A page load that we may buffer and inject into (the caller saw an allowed
        decision and no ``GENERATED``): its headers, else None. ``responseheaders``
        remembers the headers' verdict in ``flow.metadata[_JUDGED]``; ``response`` passes
        it back as ``judged`` and it holds while the headers stay the same (the same
        ``fields`` tuple: any change replaces it)."""
        metadata = flow.metadata
        if metadata.get("sargs.kind") != _PAGE:
            return None
        status = response.data.status_code  # ``status_code`` without the property
        if not 200 <= status < 300 or status in (204, 205, 206):
            return None
        if flow.request.data.method.upper() != b"GET":  # ``method`` without decoding
            return None
        fields = response.data.headers.fields
        if judged and judged[0] is fields and judged[1] == self.max_bytes:
            return judged[2]  # type: ignore[no-any-return]
        headers = scan_response_headers(fields)
        length = headers.length
        page = (  # an HTML page small enough to buffer, shown inline
            _is_page_type(headers.content_type)
            and not (headers.disposition and "attachment" in headers.disposition.lower())
            and not (length.isdigit() and int(length) > self.max_bytes)
        )
        found = headers if page else None
        if judged is None:  # (responseheaders: remember for response)
            metadata[_JUDGED] = (fields, self.max_bytes, found)
        return found

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if flow.error or response is None:
            return
        metadata = flow.metadata
        decision = metadata.get("sargs.decision")
        if not isinstance(decision, Decision) or not decision.allowed:
            return  # not a platform flow, or answered by the access addon
        if metadata.get(GENERATED):
            return
        if not (self.enabled and self._candidate(flow, response) is not None):
            response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None or flow.error or response.stream or not self.enabled:
            return
        metadata = flow.metadata
        judged = metadata.pop(_JUDGED, None)  # only between the two hooks
        decision = metadata.get("sargs.decision")
        if not isinstance(decision, Decision) or not decision.allowed:
            return
        if metadata.get(GENERATED):
            return
        found = self._candidate(flow, response, judged or ())
        if found is None:
            return
        if found.encoded:
            try:
                content = response.get_content(strict=True)
            except ValueError:
                log.warning("not injecting: undecodable Content-Encoding %r",
                            response.headers.get("Content-Encoding"))
                return
        else:
            content = response.data.content  # what get_content returns without an encoding
        if not content or len(content) > 4 * self.max_bytes:
            return
        platform = str(metadata.get("sargs.platform", ""))
        lang = str(metadata.get("sargs.lang", "en"))
        policies = found.policies
        charset = page_charset(content, found.content_type)
        if charset is None and not policies:  # the common case: no policy in the headers
            body = insert_tag(content, self._tag(platform, lang))
            if body is not None:  # (else a <meta> policy: rewrite below)
                set_body(response, body, found.encoded, found.length_at)
                metadata["sargs.injected"] = True
                return
        document = content.decode(charset, "replace") if charset else content.decode("latin-1")
        rewritten = rewrite(document, policies, lambda: page_origin(flow),
                            _attributes_of(platform, lang))
        if rewritten.headers != policies:
            response.headers.set_all("Content-Security-Policy", rewritten.headers)
        set_body(response, encode_html(rewritten.html, charset), found.encoded)
        metadata["sargs.injected"] = True

    def _tag(self, platform: str, lang: str) -> bytes:
        """Our tag without a nonce, as latin-1 bytes (what ``encode_html`` makes of it),
        built once per platform and language."""
        key = (platform, lang)
        tag = self._tags.get(key)
        if tag is None:
            tag = script_tag(_attributes_of(platform, lang), None).encode("latin-1")
            if len(self._tags) >= 1024:
                self._tags.clear()
            self._tags[key] = tag
        return tag


def _attributes_of(platform: str, lang: str) -> dict[str, str]:
    """The ``data-*`` attributes of our tag for a page of ``platform`` in ``lang``."""
    return {
        "data-backend": RESERVED,
        "data-platform": platform,
        "data-lang": lang,
        "data-account": "personal",
    }

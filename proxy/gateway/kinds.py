"""What kind of request a platform request is: pure functions over a request's parts.

- :func:`wants_html`: whether a refusal should be a page (a navigation) or JSON;
- :func:`classify`: the kind of a safe request (GET, HEAD, OPTIONS) or a media request;
- :func:`unsafe_kind`: the kind of an unsafe request, once its body is in — a post (a
  posting endpoint; a read there only when a listed reading call carries no text at a
  posting location), a listed reading call (``api``), or another ``write``.
"""

from __future__ import annotations

from proxy.gateway.extract import Request, carries_text, operation_name
from proxy.policy.catalog import Catalog, HostKind
from proxy.policy.decide import RequestKind

_DOCUMENT_DESTS = frozenset({"document", "iframe", "frame"})


def wants_html(method: str, accept: str, sec_fetch_dest: str, requested_with: str = "") -> bool:
    """Whether a refusal should be a page (a navigation) rather than JSON (fetch/XHR)."""
    if sec_fetch_dest:
        return sec_fetch_dest.lower() in _DOCUMENT_DESTS
    if requested_with:
        return False
    if method.upper() not in ("GET", "HEAD", "POST"):
        return False
    return "text/html" in accept.lower()


def classify(host_kind: HostKind, posting: bool, html: bool) -> RequestKind:
    if host_kind is HostKind.media:
        return RequestKind.media
    if posting:
        return RequestKind.post
    return RequestKind.page if html else RequestKind.api


def unsafe_kind(
    catalog: Catalog, platform: str, host: str, path: str, body: Request | None
) -> RequestKind:
    """The kind of an unsafe request to a platform site with canonical ``path``;
    ``body`` is None when its Content-Encoding cannot be decoded (nothing can be read)."""
    endpoint = catalog.posting_endpoint(platform, host, path)
    operation = operation_name(body) if body is not None else None
    reading = catalog.reading_call(platform, host, path, operation)
    if endpoint is not None:
        if reading is not None and body is not None and not carries_text(body, endpoint.text):
            return RequestKind.api  # a read on an endpoint that also receives posts
        return RequestKind.post
    return RequestKind.api if reading is not None else RequestKind.write

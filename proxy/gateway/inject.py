"""Content-script injection into allowed platform pages (a mitmproxy add-on).

docs/injection.md explains why. The HTML and Content-Security-Policy work is pure and lives
in :mod:`proxy.gateway.page` and :mod:`proxy.gateway.csp`; the reserved ``/__sargs/`` path
the tag loads its script from in :mod:`proxy.gateway.reserved`. The hooks here:

- ``responseheaders``: an allowed platform page load (the flow record's kind is ``page``:
  a navigation, not a fetch of an HTML fragment) answered 2xx with ``text/html`` and not
  larger than ``sargs_inject_max_bytes`` is buffered; everything else of an allowed
  platform (video, images, scripts, JSON, large pages) is streamed through, never buffered.
- ``response``: the page is decoded (Content-Encoding by mitmproxy: gzip, br, deflate,
  zstd; then its charset), the tag inserted and the policies adjusted as text, and the
  page encoded back (mitmproxy sets Content-Length).

The tag tells the compose guard what only the gateway knows: whether the user's decision
for this platform is read-only (``data-readonly``), and where the service's guidelines
page is (``data-guidelines``: ``sargs_service_url``, else the policy's
``institution.service_url``, with ``/guidelines?lang=``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from mitmproxy import ctx, exceptions, http

from proxy.gateway.flowinfo import FlowInfo, peek
from proxy.gateway.page import (
    decode_html,
    encode_html,
    is_page_type,
    rewrite,
    tag_attributes,
)
from proxy.gateway.reserved import page_origin
from proxy.policy.decide import RequestKind
from proxy.policy.model import Action
from proxy.runtime import Compiled

log = logging.getLogger("sargs.inject")

DEFAULT_MAX_BYTES = 5 * 1024 * 1024


def _allowed_page(record: FlowInfo | None) -> bool:
    """An allowed platform page load that no Sargs add-on answered itself."""
    return (
        record is not None
        and record.decision is not None
        and record.decision.allowed
        and record.generated is None
        and record.kind is RequestKind.page
    )


class Inject:
    """Injects the content script into allowed platform pages."""

    def __init__(self, compiled: Callable[[], Compiled] | None = None) -> None:
        self.enabled = True
        self.max_bytes = DEFAULT_MAX_BYTES
        self.compiled = compiled
        """The policy in force (for its ``institution.service_url``)."""
        self.service_url = ""
        """``sargs_service_url`` (declared by the access add-on), when set."""

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
        if "sargs_service_url" in updated:
            self.service_url = str(ctx.options.sargs_service_url or "").rstrip("/")
        if "sargs_inject" in updated:
            self.enabled = bool(ctx.options.sargs_inject)
        if "sargs_inject_max_bytes" in updated:
            value = int(ctx.options.sargs_inject_max_bytes)
            if value <= 0:
                raise exceptions.OptionsError(  # type: ignore[no-untyped-call]
                    "sargs_inject_max_bytes must be positive"
                )
            self.max_bytes = value

    def _injectable(self, flow: http.HTTPFlow, response: http.Response) -> bool:
        """A page load we may buffer and inject into: GET, 2xx with content, HTML shown
        inline, not larger than ``max_bytes`` as sent."""
        if flow.request.method != "GET":
            return False
        if not 200 <= response.status_code < 300 or response.status_code in (204, 205, 206):
            return False
        headers = response.headers
        if not is_page_type(headers.get("Content-Type", "")):
            return False
        if "attachment" in headers.get("Content-Disposition", "").lower():
            return False
        length = headers.get("Content-Length", "")
        return not (length.isdigit() and int(length) > self.max_bytes)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if flow.error or response is None:
            return
        record = peek(flow)
        if record is None or record.decision is None or not record.decision.allowed:
            return  # not a platform flow, or answered by the access add-on
        if record.generated is not None:
            return  # answered by a Sargs add-on: nothing to stream
        if self.enabled and _allowed_page(record) and self._injectable(flow, response):
            record.buffered = True
        else:
            response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None or flow.error or response.stream or not self.enabled:
            return
        record = peek(flow)
        if record is None or not record.buffered or not _allowed_page(record):
            return
        try:
            content = response.get_content(strict=True)
        except ValueError:
            log.warning("not injecting: undecodable Content-Encoding", extra={"event": {
                "event": "inject-skipped", "platform": record.platform,
                "content_encoding": response.headers.get("Content-Encoding")}})
            return
        if not content or len(content) > 4 * self.max_bytes:
            return
        document, charset = decode_html(content, response.headers.get("Content-Type", ""))
        policies = response.headers.get_all("Content-Security-Policy")
        readonly = record.decision is not None and record.decision.action is Action.read
        attrs = tag_attributes(record.platform or "", record.lang, readonly=readonly,
                               guidelines=self._guidelines(record.lang))
        rewritten = rewrite(document, policies, lambda: page_origin(flow), attrs)
        if rewritten.headers != policies:
            response.headers.set_all("Content-Security-Policy", rewritten.headers)
        response.content = encode_html(rewritten.html, charset)
        record.injected = True

    def _guidelines(self, lang: str) -> str:
        """The service's guidelines page in ``lang``, or "" when no service is known."""
        base = self.service_url
        if not base and self.compiled is not None:
            base = self.compiled().loaded.policy.institution.service_url.rstrip("/")
        return f"{base}/guidelines?lang={quote(lang, safe='')}" if base else ""

"""``/__sargs/api/v1/reviews…`` on platform hosts: "ask a superior" from the guard, through
the gateway to the service (a mitmproxy add-on, before ``Reserved``).

The guard on a proxied page talks to its own page's host (same origin: no CORS, no cookie
of the service's). The gateway knows who is asking from the connection (proxy login,
Kerberos, address), so it forwards the call to the service with the gateway token and
``X-Sargs-User``; the service believes that header only with the token
(``proxy/service/reviews.py``). Forwarded:

* ``POST /__sargs/api/v1/reviews`` (JSON; ``platform`` defaults to the host's platform),
* ``GET /__sargs/api/v1/reviews/{id}`` (the author's state; the guard polls it),
* ``POST /__sargs/api/v1/reviews/{id}/withdraw``.

When the author's poll finds the review approved, the gateway installs the allowance the
answer carries at once (``BundleAllowances.install``, as ``proceed.py`` does): the author's
click on "Post" may come before the change stream brings it. Without a link to the
service (a gateway alone) it answers 503: nobody could decide.

A POST must be ``application/json`` and, when it carries an ``Origin``, come from the
page's own host (a form on another site cannot send a draft for review in the user's
name). An unknown user gets 401; a service that does not answer, 503. The body is never
logged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable

import aiohttp
from mitmproxy import http

from proxy.gateway.flowinfo import info
from proxy.gateway.reserved import cors, json_answer, page_origin
from proxy.gateway.sync import GatewaySync
from proxy.store.allowances import Allowance

log = logging.getLogger("sargs.gateway.reviews")

PREFIX = "/__sargs/api/v1/reviews"
_PATH = re.compile(r"^/__sargs/api/v1/reviews(?:/([A-Za-z0-9_-]{1,32})(/withdraw)?)?$")
TIMEOUT = 20.0
"""Seconds the service has to answer (it checks the text again)."""


class ReviewForward:
    """Forwards the guard's review calls to the service (see the module docs)."""

    name = "sargsreviews"

    def __init__(self, sync: GatewaySync | None, *, max_body_bytes: int = 64 * 1024) -> None:
        self.sync = sync
        self.max_body_bytes = max_body_bytes

    def answer(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Its paths (asked by ``Reserved``, on a platform host's reserved path)."""
        path = flow.request.path.split("?", 1)[0]
        match = _PATH.match(path) if path.startswith(PREFIX) else None
        if match is None:
            return None  # not ours: Reserved answers (404)
        return self._respond(flow, match)

    async def _respond(self, flow: http.HTTPFlow, match: re.Match[str]) -> None:
        record = info(flow)
        record.generated = "reserved"
        assert record.platform is not None  # Reserved asks on platform hosts only
        flow.response = await self._answer(flow, match, record.platform,
                                           record.subject.user if record.subject else None)

    async def _answer(self, flow: http.HTTPFlow, match: re.Match[str], platform: str,
                      user: str | None) -> http.Response:
        method = flow.request.method
        allow = cors(flow)
        review_id, withdraw = match.group(1), match.group(2)
        wanted = "GET" if review_id and not withdraw else "POST"
        if method == "OPTIONS":
            return http.Response.make(204, b"", {"Allow": f"{wanted}, OPTIONS", **allow})
        if method != wanted:
            return json_answer(405, {"error": f"method {method} not allowed"}, Allow=wanted)
        if method == "POST":
            refused = self._refuse_post(flow)
            if refused is not None:
                return refused
        if not user:
            return json_answer(401, {"error": "the gateway does not know who you are: sign in to "
                                              "the proxy first"}, **allow)
        if self.sync is None:
            return json_answer(503, {"error": "Sargs cannot be reached: the draft was NOT sent"},
                               **allow)
        body: bytes | None = None
        if method == "POST" and not withdraw:
            body = self._with_platform(flow.request.get_content(strict=False) or b"", platform)
            if body is None:
                return json_answer(400, {"error": "body is not a JSON object"}, **allow)
        headers = {"Accept-Language": flow.request.headers.get("Accept-Language", "en"),
                   "Content-Type": "application/json"}
        path = "/api/v1/reviews" + (f"/{review_id}" if review_id else "") \
            + ("/withdraw" if withdraw else "")
        try:
            status, payload = await self.sync.call(method, path, user=user, body=body,
                                                   headers=headers, seconds=TIMEOUT)
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as exc:
            log.warning("review call to the service failed: %s", type(exc).__name__,
                        extra={"event": {"event": "review-forward-failed",
                                         "error": type(exc).__name__}})
            return json_answer(503, {"error": "Sargs cannot be reached: the draft was NOT sent"},
                               **allow)
        if status == 200 and method == "GET":
            self._install(payload)
        return http.Response.make(status, payload, {
            "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
            **allow})

    def _install(self, payload: bytes) -> None:
        """An approved review's allowance, installed here at once."""
        assert self.sync is not None
        try:
            answer = json.loads(payload)
            found = answer.get("allowance") if answer.get("status") == "approved" else None
            if found is not None:
                self.sync.allowances.install(Allowance.from_json(found))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.error("review state unreadable", extra={"event": {
                "event": "review-state-unreadable", "error": str(exc)}})

    def _refuse_post(self, flow: http.HTTPFlow) -> http.Response | None:
        request = flow.request
        if request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower() \
                != "application/json":
            return json_answer(415, {"error": "application/json only"})
        origin = request.headers.get("Origin")
        if origin is not None:
            host = origin.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
            if host != page_origin(flow).host:
                return json_answer(403, {"error": "a review is sent from the platform's own page"})
        if len(request.raw_content or b"") > self.max_body_bytes:
            return json_answer(413, {"error": f"at most {self.max_body_bytes} bytes"})
        return None

    @staticmethod
    def _with_platform(raw: bytes, platform: str) -> bytes | None:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        data["platform"] = platform  # the host's platform, whatever the page says
        return json.dumps(data, ensure_ascii=False).encode()

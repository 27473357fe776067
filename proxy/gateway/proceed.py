"""``POST /__sargs/api/v1/proceed`` on a platform host: a way forward from the page.

The guard on a proxied page calls this reserved path (same origin: no CORS to loosen).
The gateway knows who the user is from the connection, so it forwards the JSON body to
the service's ``POST /api/v1/proceed`` with its bearer token and the user in
``X-Sargs-User`` (the service trusts that name only with the token). The platform is the
one of the host the page is on, never what the page says. When the service issues an
allowance, the gateway installs it at once (``BundleAllowances.install``): the user's
click on "Post" may come before the change stream brings it; other gateways get it by
the stream.

``GET /__sargs/api/v1/reasons`` gives the policy's reasons for ``justify`` in the user's
language (the guard's list), from the gateway's own policy.

Runs before :class:`proxy.gateway.reserved.Reserved` (which answers 404 for paths it
does not know). Without a link to the service (a gateway alone) it answers 503: there is
nobody to record the choice, so nothing is let through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from mitmproxy import http

from proxy.gateway.flowinfo import info
from proxy.gateway.reserved import cors, json_answer
from proxy.gateway.sync import GatewaySync
from proxy.i18n import Translator
from proxy.runtime import Compiled
from proxy.store.allowances import Allowance

log = logging.getLogger("sargs.gateway.proceed")

PROCEED_PATH = "/__sargs/api/v1/proceed"
REASONS_PATH = "/__sargs/api/v1/reasons"
"""``GET``: the policy's reasons for ``justify`` in the user's language:
``{"reasons": [{"id", "label"}], "minutes"}`` (the guard's reason list)."""
SERVICE_PATH = "/api/v1/proceed"
TIMEOUT = 15.0
"""Seconds the service has to answer (it checks the text again)."""


class Proceed:
    """Forwards ``/__sargs/api/v1/proceed`` to the service (see the module docs)."""

    name = "sargsproceed"

    def __init__(self, sync: GatewaySync | None, compiled: Callable[[], Compiled], *,
                 max_body_bytes: int = 64 * 1024) -> None:
        self.sync = sync
        self.compiled = compiled
        self.max_body_bytes = max_body_bytes

    def answer(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Its two paths (asked by ``Reserved``, on a platform host's reserved path)."""
        path = flow.request.path.split("?", 1)[0]
        if path not in (PROCEED_PATH, REASONS_PATH):
            return None
        return self._answer(flow, path)

    async def _answer(self, flow: http.HTTPFlow, path: str) -> None:
        record = info(flow)
        record.generated = "reserved"
        headers = cors(flow)
        method = flow.request.method
        if path == REASONS_PATH:
            flow.response = (self._reasons(record.lang) if method in ("GET", "HEAD")
                             else json_answer(405, {"error": f"method {method} not allowed"}))
            return
        if method == "OPTIONS":
            flow.response = http.Response.make(204, b"", {"Allow": "POST, OPTIONS", **headers})
            return
        if method != "POST":
            flow.response = json_answer(405, {"error": f"method {method} not allowed"})
            return
        t = Translator("posts", record.lang)
        user = record.subject.user if record.subject is not None else None
        if not user:
            flow.response = json_answer(403, {"error": "no-user", "message": t("proceed_no_user")},
                                        **headers)
            return
        raw = flow.request.get_content(strict=False) or b""
        if len(raw) > self.max_body_bytes:
            flow.response = json_answer(413, {"error": "request body too large: at most "
                                                       f"{self.max_body_bytes} bytes"}, **headers)
            return
        try:
            data = json.loads(raw)
        except ValueError as exc:
            flow.response = json_answer(400, {"error": f"body is not valid JSON: {exc}"}, **headers)
            return
        if not isinstance(data, dict):
            flow.response = json_answer(422, {"error": "invalid request: (body)", "details": [
                {"field": "(body)", "message": "must be a JSON object"}]}, **headers)
            return
        data["platform"] = record.platform  # the page's host decides, never the page
        data.setdefault("lang", record.lang)
        if self.sync is None:
            flow.response = json_answer(503, {"error": "service-unreachable",
                                              "message": t("proceed_unavailable")}, **headers)
            return
        flow.response = await self._forward(data, user, t, headers)

    def _reasons(self, lang: str) -> http.Response:
        compliance = self.compiled().loaded.policy.compliance
        return json_answer(200, {
            "reasons": [{"id": key, "label": text.get(lang)}
                        for key, text in compliance.reasons.items()],
            "minutes": compliance.proceed_minutes})

    async def _forward(self, data: dict[str, Any], user: str, t: Translator,
                       headers: dict[str, str]) -> http.Response:
        assert self.sync is not None
        try:
            status, body = await self.sync.call(
                "POST", SERVICE_PATH, user=user, body=json.dumps(data).encode(),
                headers={"Content-Type": "application/json"}, seconds=TIMEOUT)
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as exc:
            log.warning("proceed: the service cannot be reached", extra={"event": {
                "event": "proceed-unreachable", "error": str(exc) or type(exc).__name__}})
            return json_answer(503, {"error": "service-unreachable",
                                      "message": t("proceed_unavailable")}, **headers)
        if status == 200:
            try:
                answer = json.loads(body)
                found = answer.get("allowance")
                if found is not None:
                    self.sync.allowances.install(Allowance.from_json(found))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.error("proceed: the service's answer is unreadable", extra={"event": {
                    "event": "proceed-unreadable", "error": str(exc)}})
                return json_answer(502, {"error": "service-answer-unreadable",
                                         "message": t("proceed_unavailable")}, **headers)
        if status == 401:  # the gateway's token: not the user's fault, say so plainly
            log.error("proceed: the service refused this gateway's token")
            return json_answer(503, {"error": "service-unreachable",
                                     "message": t("proceed_unavailable")}, **headers)
        return http.Response.make(
            status, body,
            {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
             **headers})

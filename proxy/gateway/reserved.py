"""The reserved path ``/__sargs/`` on every platform host: answered by the gateway, never
forwarded to the platform (a mitmproxy add-on, after the access add-on).

- ``GET /__sargs/static/compose-guard.js`` serves the compose guard's parts joined
  (:mod:`proxy.guardscript`; read again when they change, with an ETag);
- ``POST /__sargs/api/v1/check`` checks a draft with the policy's engine, off the event
  loop (the gateway's check pool, ``proxy/checkpool.py``: in ``sargs run`` the one the
  service uses) under its CPU budget; past it, or with every worker busy, the answer is a
  JSON 503 with ``Retry-After``, as the service gives. The gateway knows the user's roles,
  so it sets ``official_allowed`` itself, and checks keep working while the service is
  away;
- the paths of the add-ons given as ``answerers`` (ways forward ``proceed.py``, reviews
  ``reviewfwd.py``, the last refusal ``lastrefusal.py``): each one's ``answer(flow)`` is
  asked first, on this path only (those that call the service use the grant sync's session
  to it, ``GatewaySync.call``). They are not add-ons of their own: every add-on in
  mitmproxy's chain costs every flow through the gateway a look-up per event (about 55 k
  instructions per allowed page for these three, 0.6 % of a request: measured by
  ``./scripts/bench gateway``);
- anything else under the path: 404 (405 for a wrong method), JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mitmproxy import http
from pydantic import ValidationError

from proxy.checkpool import CheckTimeout, CheckUnavailable
from proxy.compliance.model import CheckRequest
from proxy.gateway import csp
from proxy.gateway.flowinfo import FlowInfo, info, peek
from proxy.gateway.page import RESERVED, SCRIPT_PATH
from proxy.gateway.posts import Checker, official_allowed, thread_checker
from proxy.guardscript import GuardScript
from proxy.runtime import Compiled

CHECK_PATH = "/__sargs/api/v1/check"

log = logging.getLogger("sargs.reserved")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def json_answer(status: int, payload: dict[str, Any], **headers: str) -> http.Response:
    """A JSON answer the gateway gives itself (never cached)."""
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


def cors(flow: http.HTTPFlow) -> dict[str, str]:
    """CORS headers for a call from a page of the same platform host, else none."""
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


class Answerer(Protocol):
    """An add-on answering some paths under ``/__sargs/`` (on a platform host)."""

    def answer(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Set ``flow.response`` (or return a coroutine that will) for a path it owns;
        leave the flow alone for the others."""


class Reserved:
    """Answers ``/__sargs/`` on platform hosts (see the module docs)."""

    def __init__(
        self,
        compiled: Callable[[], Compiled],
        *,
        script: Path | None = None,
        max_body_bytes: int = 64 * 1024,
        now: Callable[[], datetime] = _utcnow,
        check: Checker | None = None,
        answerers: tuple[Answerer, ...] = (),
    ) -> None:
        self.compiled = compiled
        self.answerers = answerers
        """Add-ons with paths of their own under ``/__sargs/``, asked first."""
        self.check = check or thread_checker(compiled)
        """Where drafts are checked, off the event loop: the gateway's check pool."""
        self.script = GuardScript([script] if script else None)  # None: extension/guard/*
        self.max_body_bytes = max_body_bytes
        self.now = now

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Answers the reserved path; a check is a coroutine mitmproxy awaits, every other
        request returns at once, without one."""
        if flow.response or flow.error or not flow.live:
            return None
        if not flow.request.path.startswith(RESERVED):
            return None
        record = peek(flow)
        if record is None or record.platform is None:
            return None  # not a platform host (the access add-on records every one it lets by)
        for answerer in self.answerers:
            pending = answerer.answer(flow)
            if pending is not None or flow.response is not None:
                return pending
        info(flow).generated = "reserved"
        path = flow.request.path.split("?", 1)[0]
        method = flow.request.method
        if path == SCRIPT_PATH and method in ("GET", "HEAD"):
            flow.response = self._serve_script(flow)
        elif path == CHECK_PATH and method == "OPTIONS":
            flow.response = http.Response.make(204, b"", {"Allow": "POST, OPTIONS", **cors(flow)})
        elif path == CHECK_PATH and method == "POST":
            return self._answer_check(flow, record)
        elif path in (SCRIPT_PATH, CHECK_PATH):
            flow.response = json_answer(405, {"error": f"method {method} not allowed"})
        else:
            flow.response = json_answer(404, {"error": f"no such Sargs path: {path}"})
        return None

    async def _answer_check(self, flow: http.HTTPFlow, record: FlowInfo) -> None:
        flow.response = await self._check(flow, record)

    def _serve_script(self, flow: http.HTTPFlow) -> http.Response:
        found = self.script.get()
        if found is None:
            return json_answer(404, {"error": "content script not installed"})
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

    async def _check(self, flow: http.HTTPFlow, record: FlowInfo) -> http.Response:
        raw = flow.request.get_content(strict=False) or b""
        if len(raw) > self.max_body_bytes:
            limit = self.max_body_bytes
            return json_answer(413, {"error": f"request body too large: at most {limit} bytes"})
        try:
            data = json.loads(raw)
        except ValueError as exc:
            return json_answer(400, {"error": f"body is not valid JSON: {exc}"})
        if not isinstance(data, dict):
            return json_answer(422, {"error": "invalid request: (body)", "details": [
                {"field": "(body)", "message": "must be a JSON object"}]})
        compiled = self.compiled()
        data.setdefault("platform", record.platform)
        data.setdefault("lang", record.lang)
        data.setdefault("at", self.now().isoformat())
        # Never trusted from the page: the gateway knows the user's roles.
        subject = record.subject
        data["official_allowed"] = (
            official_allowed(compiled, subject) if subject is not None else None
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
            return json_answer(422, {"error": f"invalid request: {fields}", "details": details})
        try:
            result = await self.check(check)  # off the event loop, under the pool's budget
        except (CheckTimeout, CheckUnavailable, TimeoutError) as exc:
            reason = str(exc) or "the check took longer than its budget; nothing was decided"
            log.warning("reserved-path check not made", extra={"event": {
                "event": "check-unavailable", "platform": record.platform,
                "error": type(exc).__name__}})
            return json_answer(503, {"error": reason}, **{"Retry-After": "1", **cors(flow)})
        return http.Response.make(
            200,
            result.model_dump_json().encode(),
            {"Content-Type": "application/json", "Cache-Control": "no-store", **cors(flow)},
        )

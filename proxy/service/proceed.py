"""``POST /api/v1/proceed``: post past a finding with a way the policy allows (issue 16).

Body (JSON): ``{text, platform, rules?, way, reason?, attachments?, lang?}``; ``way`` is
``acknowledge``, ``justify`` or ``report`` (``review`` has its own endpoint,
``/api/v1/reviews``). The service checks the text again itself (the browser's word on
its findings counts for nothing) and takes the findings that refuse or warn — of
``rules`` when given — that are not simulated. Each of them must allow ``way`` (else 422
naming ``way``); ``justify`` needs a ``reason``: a reason id of the policy's
``compliance.reasons`` or free text (at most 500 characters).

What it records (never the text; ``text_hash`` is ``proxy.compliance.texthash``):

* ``acknowledge``/``justify``: an allowance for exactly this text, this user and
  platform, for ``compliance.proceed_minutes`` (``allowances.issue``; audit
  ``post-override`` with the way, the reason, the rules and the hash);
* ``report``: a ``false-positive`` entry (rules, hash, the note if any), and an allowance
  only when every finding also allows ``acknowledge`` or ``justify`` (a block-severity
  finding the policy lets nobody past stays refused; the report still reaches the
  policy authors).

Answer: ``{"allowance": {...} | null, "expires": ISO | null, "way", "rules",
"reported"}``. Who asks: a signed-in user (a session with ``X-CSRF-Token``, or HTTP
Basic), or a gateway with its bearer token naming the user it identified in
``X-Sargs-User`` (the service trusts that name only with the gateway token; the gateway
forwards ``/__sargs/api/v1/proceed`` from the platform page, ``proxy/gateway/proceed.py``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from proxy.checkpool import CheckTimeout, CheckUnavailable
from proxy.compliance.config import RuleId
from proxy.compliance.model import MAX_TEXT, Attachment, CheckRequest, Lang
from proxy.compliance.texthash import text_hash
from proxy.i18n import negotiate
from proxy.service import keys
from proxy.service.auth import SESSION_COOKIE, require_user
from proxy.service.bundle import gateway_authorized
from proxy.service.check import CHECKPOOL
from proxy.service.csrf import check_csrf
from proxy.service.errors import json_error
from proxy.store import allowances, audit

PROCEED = "/api/v1/proceed"
USER_HEADER = "X-Sargs-User"
"""The user a gateway identified (taken only with the gateway token)."""
MAX_REASON = 500
MAX_ACTIVE_PER_USER = 20
"""Unused allowances one user may hold at once (each proceed issues one)."""

routes = web.RouteTableDef()


class ProceedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(max_length=MAX_TEXT, description="The post. Never stored or logged.")
    platform: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    rules: list[RuleId] = Field(
        default_factory=list, max_length=20,
        description="The rules the user proceeds past; empty: every finding.")
    way: Literal["acknowledge", "justify", "report"]
    reason: str | None = Field(
        default=None, max_length=MAX_REASON,
        description="A reason id of the policy's compliance.reasons, or free text.")
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    lang: Lang | None = None


def _unprocessable(field: str, message: str) -> web.Response:
    return json_error(422, f"invalid request: {field}",
                      details=[{"field": field, "message": message}])


async def _who(request: web.Request) -> str:
    """The user proceeding: named by a gateway (with its token), or signed in here."""
    if gateway_authorized(request):
        name = request.headers.get(USER_HEADER, "").strip()
        if not name or len(name) > 128:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": f"{USER_HEADER}: the gateway must name the user"}),
                content_type="application/json")
        return name
    user = await require_user(request)
    if SESSION_COOKIE in request.cookies and not request.headers.get(
            "Authorization", "").lower().startswith("basic "):
        await check_csrf(request, request.headers.get("X-CSRF-Token"))
    return user.name


@routes.post(PROCEED)
async def proceed(request: web.Request) -> web.Response:
    user = await _who(request)
    body = ProceedIn.model_validate_json(await request.read() or b"null")
    app = request.app
    compiled = app[keys.POLICY].current
    policy = compiled.loaded.policy
    if body.platform not in policy.platforms:
        return _unprocessable("platform", f"unknown platform {body.platform!r}")
    lang = body.lang or negotiate(request.headers.get("Accept-Language"))
    draft = CheckRequest(text=body.text, platform=body.platform, attachments=body.attachments,
                         lang=lang, at=datetime.now(UTC))
    try:
        result = await app[CHECKPOOL].check(draft)
    except (CheckTimeout, CheckUnavailable) as exc:
        response = json_error(503, str(exc))
        response.headers["Retry-After"] = "1"
        return response
    named = set(body.rules)
    relevant = [f for f in result.findings
                if not f.simulated and f.severity in ("warn", "block")
                and (not named or f.rule in named)]
    if not relevant:
        return _unprocessable("text", "nothing to proceed past: Sargs finds nothing in this "
                                      "text that refuses or warns" +
                                      (" (of the rules named)" if named else ""))
    barred = sorted({f.rule for f in relevant if body.way not in f.ways})
    if barred:
        return _unprocessable("way", f"the policy does not allow {body.way!r} past "
                                     f"{', '.join(barred)}")
    reason = (body.reason or "").strip()
    if body.way == "justify" and not reason:
        return _unprocessable("reason", "give a reason: one of the policy's reasons or "
                                        "your own words")
    listed = reason in policy.compliance.reasons
    rules = sorted({str(f.rule) for f in relevant})
    hashed = text_hash(body.text)
    details: dict[str, Any] = {"way": body.way, "severity": max(
        (f.severity for f in relevant), key=lambda s: s.rank).value}
    if reason:
        details["reason"] = reason
        details["reason_listed"] = listed
    store = app[keys.STORE]
    reported = body.way == "report"
    if reported:
        await asyncio.to_thread(
            audit.append, store, audit.Kind.false_positive, actor=user, user=user,
            platform=body.platform,
            details={**details, "rules": rules, "text_hash": hashed,
                     "policy": result.policy})
    passable = all({"acknowledge", "justify"} & set(f.ways) for f in relevant)
    if reported and not passable:
        return web.json_response({"allowance": None, "expires": None, "way": body.way,
                                  "rules": rules, "reported": True})
    held = await asyncio.to_thread(allowances.active, store)
    if sum(1 for a in held if a.user == user) >= MAX_ACTIVE_PER_USER:
        return json_error(429, "too many unused permissions to post: post or wait for them "
                               "to expire")
    made = await asyncio.to_thread(
        allowances.issue, store, user=user, platform=body.platform, text_hash=hashed,
        kind="proceed", rules=rules, minutes=policy.compliance.proceed_minutes, actor=user,
        details={**details, "policy": result.policy})
    return web.json_response({"allowance": made.to_json(),
                              "expires": made.expires_at.isoformat(), "way": body.way,
                              "rules": rules, "reported": reported})


def setup(app: web.Application) -> None:
    app.add_routes(routes)

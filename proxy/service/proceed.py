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
  policy authors). At most ``MAX_REPORTS_PER_HOUR`` per user (429 with ``Retry-After``).

Answer: ``{"allowance": {...} | null, "expires": ISO | null, "way", "rules",
"reported"}``. ``GET/POST /proceed`` is the same as a page (a signed-in user pastes the
post): the gateway's refusal links there for posts the guard never saw.

Who asks: a signed-in user (a session with ``X-CSRF-Token``, or HTTP Basic), or a
gateway with its bearer token naming the user it identified in ``X-Sargs-User`` (the
service trusts that name only with the gateway token; the gateway forwards
``/__sargs/api/v1/proceed`` from the platform page, ``proxy/gateway/proceed.py``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proxy.checkpool import CheckTimeout, CheckUnavailable
from proxy.compliance.config import RuleId
from proxy.compliance.model import MAX_TEXT, Attachment, CheckRequest, Lang
from proxy.compliance.texthash import text_hash
from proxy.i18n import Translator, negotiate
from proxy.service import keys, localize, openapi
from proxy.service.auth import SESSION_COOKIE, require_user
from proxy.service.bundle import gateway_authorized
from proxy.service.check import CHECKPOOL
from proxy.service.csrf import check_csrf
from proxy.service.errors import form_errors, json_error, read_form
from proxy.service.pages import DOMAIN, language, local_time, render
from proxy.store import allowances, audit
from proxy.store.db import Store
from proxy.store.users import User

PROCEED = "/api/v1/proceed"
USER_HEADER = "X-Sargs-User"
"""The user a gateway identified (taken only with the gateway token)."""
MAX_REASON = 500
MAX_ACTIVE_PER_USER = 20
"""Unused allowances one user may hold at once (each proceed issues one)."""
MAX_REPORTS_PER_HOUR = 30
"""Wrong-finding reports one user may file in an hour: each is an audit entry, and the
log is not a place anyone may fill at will."""

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


class ProceedOut(BaseModel):
    """What a recorded way forward gives back."""

    allowance: dict[str, Any] | None = Field(
        description="The permission to post exactly this text once (id, user, platform, "
                    "text_hash, kind, rules, issued_by, issued_at, expires_at), or null.")
    expires: str | None
    way: str
    rules: list[str]
    reported: bool


class Refused(Exception):
    """A way forward refused: the HTTP status, the field at fault and why (in English for
    the API; ``key`` and ``values`` say it in the reader's language on the page, from
    ``proxy/locales/proceed.yaml``), and for 429 and 503 when to ask again."""

    def __init__(self, status: int, field: str, message: str, key: str,
                 retry_after: int = 1, **values: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message
        self.key, self.values, self.retry_after = key, values, retry_after


def _reports_left(store: Store, user: str, now: datetime) -> int:
    """Seconds until ``user`` may report a wrong finding again; 0: now (sync)."""
    since = now - timedelta(hours=1)
    if audit.count(store, kind=audit.Kind.false_positive, user=user,
                   since=since) < MAX_REPORTS_PER_HOUR:
        return 0
    oldest = audit.query(store, kind=audit.Kind.false_positive, user=user, since=since,
                         limit=1, newest_first=False)
    return max(1, int((oldest[0].at - since).total_seconds()) + 1) if oldest else 1


async def take_way(app: web.Application, user: str, body: ProceedIn, lang: str
                   ) -> dict[str, Any]:
    """Check the text again, record the way and issue the allowance (module docs);
    ``Refused`` names the field."""
    compiled = app[keys.POLICY].current
    policy = compiled.loaded.policy
    if body.way == "report":
        wait = await asyncio.to_thread(_reports_left, app[keys.STORE], user, datetime.now(UTC))
        if wait:
            raise Refused(429, "way", f"at most {MAX_REPORTS_PER_HOUR} reports of wrong "
                                      "findings an hour: try again later", "err_reports",
                          retry_after=wait, count=str(MAX_REPORTS_PER_HOUR))
    if body.platform not in policy.platforms:
        raise Refused(422, "platform", f"unknown platform {body.platform!r}", "err_platform")
    draft = CheckRequest(text=body.text, platform=body.platform, attachments=body.attachments,
                         lang=body.lang or lang, at=datetime.now(UTC))
    try:
        result = await app[CHECKPOOL].check(draft)
    except (CheckTimeout, CheckUnavailable) as exc:
        raise Refused(503, "text", str(exc), "err_unavailable") from None
    named = set(body.rules)
    relevant = [f for f in result.findings
                if not f.simulated and f.severity in ("warn", "block")
                and (not named or f.rule in named)]
    if not relevant:
        raise Refused(422, "text", "nothing to proceed past: Sargs finds nothing in this text "
                                   "that refuses or warns"
                                   + (" (of the rules named)" if named else ""), "err_nothing")
    if any(f.severity == "block" for f in relevant):
        # Warnings never stop a post; a way is judged against what does (a working-hours
        # warning must not bar a reason given for a phone number).
        relevant = [f for f in relevant if f.severity == "block"]
    barred = sorted({f.rule for f in relevant if body.way not in f.ways})
    if barred:
        raise Refused(422, "way", f"the policy does not allow {body.way!r} past "
                                  f"{', '.join(barred)}", "err_way", rules=", ".join(
                                      localize.rule_name(policy, r, lang) for r in barred))
    reason = (body.reason or "").strip()
    if body.way == "justify" and not reason:
        raise Refused(422, "reason", "give a reason: one of the policy's reasons or your own "
                                     "words", "err_reason")
    rules = sorted({str(f.rule) for f in relevant})
    hashed = text_hash(body.text)
    details: dict[str, Any] = {"way": body.way, "severity": max(
        (f.severity for f in relevant), key=lambda s: s.rank).value}
    if reason:
        details["reason"] = reason
        details["reason_listed"] = reason in policy.compliance.reasons
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
        return {"allowance": None, "expires": None, "way": body.way, "rules": rules,
                "reported": True}
    held = await asyncio.to_thread(allowances.active, store)
    if sum(1 for a in held if a.user == user) >= MAX_ACTIVE_PER_USER:
        raise Refused(429, "text", "too many unused permissions to post: post or wait for "
                                   "them to expire", "err_too_many",
                      retry_after=60 * policy.compliance.proceed_minutes)
    made = await asyncio.to_thread(
        allowances.issue, store, user=user, platform=body.platform, text_hash=hashed,
        kind="proceed", rules=rules, minutes=policy.compliance.proceed_minutes, actor=user,
        details={**details, "policy": result.policy})
    return {"allowance": made.to_json(), "expires": made.expires_at.isoformat(),
            "way": body.way, "rules": rules, "reported": reported}


@routes.post(PROCEED)
async def proceed(request: web.Request) -> web.Response:
    user = await _who(request)
    body = ProceedIn.model_validate_json(await request.read() or b"null")
    lang = body.lang or negotiate(request.headers.get("Accept-Language"))
    try:
        answer = await take_way(request.app, user, body, lang)
    except Refused as exc:
        said = Translator("proceed", lang)(exc.key, **exc.values)  # for the guard to show
        if exc.status == 422:
            return json_error(422, f"invalid request: {exc.field}", message=said,
                              details=[{"field": exc.field, "message": exc.message}])
        response = json_error(exc.status, exc.message, message=said)
        if exc.status in (429, 503):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return web.json_response(answer)


# --- the page, for posts the guard never saw (the gateway's refusal links here) ----------


def _page(request: web.Request, user: User, values: dict[str, str], *,
          errors: dict[str, str] | None = None, done: dict[str, Any] | None = None,
          status: int = 200) -> web.Response:
    lang = language(request)
    policy = request.app[keys.POLICY].current.loaded.policy
    compliance = policy.compliance
    tp = Translator("proceed", lang)
    return render(
        request, "proceed.html", status=status, tp=tp, values=values, errors=errors or {},
        done=done,
        platforms=sorted(((pid, p.name) for pid, p in policy.platforms.items()),
                         key=lambda x: x[1].lower()),
        reasons=[(key, text.get(lang)) for key, text in compliance.reasons.items()],
        minutes=compliance.proceed_minutes,
        expires=(local_time(request, datetime.fromisoformat(done["expires"]))
                 if done and done.get("expires") else ""))


@routes.get("/proceed")
async def proceed_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    values = {"platform": request.query.get("platform", ""), "way": "justify"}
    return _page(request, user, values)


@routes.post("/proceed")
async def proceed_form(request: web.Request) -> web.Response:
    user = await require_user(request)
    form = await read_form(request)
    await check_csrf(request, str(form.get("csrf", "")))
    values = {k: str(form.get(k, "")) for k in ("platform", "way", "reason", "note", "text")}
    listed = values["reason"] not in ("", "other") and values["way"] == "justify"
    reason = values["reason"] if listed else (values["note"].strip() or None)
    try:
        body = ProceedIn.model_validate({
            "text": values["text"], "platform": values["platform"], "way": values["way"],
            "reason": reason, "lang": language(request)})
    except ValidationError as exc:
        errors = form_errors(exc, Translator(DOMAIN, language(request)))
        return _page(request, user, values, errors=errors, status=422)
    try:
        done = await take_way(request.app, user.name, body, language(request))
    except Refused as exc:
        said = Translator("proceed", language(request))(exc.key, **exc.values)
        return _page(request, user, values, errors={exc.field: said}, status=exc.status)
    return _page(request, user, {**values, "text": ""}, done=done)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    openapi.document("POST", PROCEED, openapi.Op(
        "Proceed past a finding: acknowledge, justify or report", "check",
        body=ProceedIn, answer=ProceedOut, errors=(400, 401, 403, 413, 422, 429, 503),
        description="A signed-in user (session with X-CSRF-Token, or HTTP Basic), or a "
                    "gateway's bearer token with the user it identified in X-Sargs-User. "
                    "The text is checked again; a way its findings do not allow is 422 "
                    "naming 'way'. Records post-override or false-positive (the text's "
                    "SHA-256, never the text) and issues a permission to post exactly this "
                    "text once (compliance.proceed_minutes)."))

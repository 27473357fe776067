"""Staff side of temporary access: the request form, the API, "My requests", notifications.

* ``GET /access/request?platform=ID&url=…`` — the form the gateway's block page links to.
* ``POST /api/v1/exceptions`` — JSON or the form: ``platform``, ``access`` (``read`` or
  ``allow``), ``duration`` (minutes, at most the requester's roles' ``max_grant_hours``),
  ``justification`` (required), ``ticket`` (optional). 201 ``{"id", "status": "pending"}``
  only after the store committed the request; if the store cannot take it, 503 and the
  request is *not* acknowledged.
* ``GET /access/mine`` — "My requests" (pending, approved until …, rejected with the
  reason, expired, revoked, lapsed), updated in place by polling
  ``GET /api/v1/exceptions/mine``.
* E-mail (``Settings.smtp_host``): approvers who may decide a new request hear of it;
  the requester hears of the decision. Mails go out in the background; a failure is logged,
  never shown to the user whose action succeeded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import aiosmtplib
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from proxy.i18n import LANGUAGES, Translator, text
from proxy.policy.model import Policy
from proxy.policy.scopes import grant_cap_minutes, may_decide
from proxy.service import keys, localize
from proxy.service.auth import require_user, session_of
from proxy.service.csrf import CSRF_FIELD, CSRF_HEADER, check_csrf
from proxy.service.errors import (
    form_errors,
    json_error,
    read_form,
    wants_html,
)
from proxy.service.pages import DOMAIN, language, render
from proxy.service.redirects import safe_platform_url
from proxy.store import InvalidInput, StoreError, TooManyPending, grants, requests, users
from proxy.store.requests import MAX_MINUTES, AccessRequest
from proxy.store.users import User

log = logging.getLogger("sargs.service.access")
routes = web.RouteTableDef()

PRESETS = (60, 240, 480, 1440, 4320, 10080)
"""Duration choices on the form, in minutes (those above the requester's cap are hidden)."""


class ExceptionIn(BaseModel):
    """A request for temporary access."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform: str = Field(min_length=1, max_length=64, description="Platform id (x, facebook…).")
    access: Literal["read", "allow"] = Field(
        description="read: view only; allow: view and post.")
    duration: int = Field(ge=1, le=MAX_MINUTES,
                          description="Minutes, counted from approval; at most the "
                                      "requester's roles' max_grant_hours.")
    justification: str = Field(min_length=1, max_length=2000,
                               description="Why access is needed (shown to approvers).")
    ticket: str | None = Field(default=None, max_length=100,
                               description="Optional ticket or case number.")


class ExceptionCreated(BaseModel):
    id: str
    status: Literal["pending"]


class ExceptionOut(BaseModel):
    """A request as its requester and approvers see it."""

    id: str
    user: str
    platform: str
    access: str
    duration: int = Field(description="Minutes asked for.")
    justification: str
    ticket: str | None
    status: Literal["pending", "approved", "rejected", "expired", "revoked", "lapsed"]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None = Field(description="The approver's reason for a rejection.")
    grant_id: str | None
    expires_at: datetime | None = Field(description="When the grant ends (approved only).")


class ExceptionList(BaseModel):
    requests: list[ExceptionOut]


def to_out(request: AccessRequest, expires_at: datetime | None = None) -> ExceptionOut:
    return ExceptionOut(
        id=request.id, user=request.user, platform=request.platform, access=request.access,
        duration=request.duration_minutes, justification=request.justification,
        ticket=request.ticket, status=request.status,
        created_at=request.created_at, decided_at=request.decided_at,
        decided_by=request.decided_by, reason=request.reason, grant_id=request.grant_id,
        expires_at=expires_at)


def with_expiry(store: Any, found: list[AccessRequest]) -> list[ExceptionOut]:
    """Requests with their grants' end times (sync: run in a thread)."""
    out = []
    for r in found:
        expires = None
        if r.grant_id is not None:
            grant = grants.get_grant(store, r.grant_id)
            if grant is not None:
                expires = grant.ended_at if grant.status == grants.REVOKED else grant.expires_at
        out.append(to_out(r, expires))
    return out


async def read_json(request: web.Request) -> Any:
    """The JSON body (``{}`` when empty); bytes that are not UTF-8 are bad input (400)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not UTF-8"}),
                                 content_type="application/json") from None


def policy_of(request: web.Request) -> Policy:
    return request.app[keys.POLICY].current.loaded.policy


def store_unavailable(exc: Exception) -> web.Response:
    log.error("store unavailable: %s", exc)
    return json_error(503, "the request could not be stored, so it was NOT sent: the "
                           "database is unavailable. Please try again in a minute.")


def _invalid(field: str, message: str) -> web.Response:
    return json_error(422, f"invalid request: {field}",
                      details=[{"field": field, "message": message}])


# --- the form -------------------------------------------------------------------------------


def safe_return_url(policy_catalog: Any, url: str | None) -> str | None:
    """The blocked page to return to, only if it is an http(s) URL on a catalog platform
    as a browser reads it (``redirects.py``): never a redirect anywhere else."""
    return safe_platform_url(policy_catalog, url)


def _form_context(request: web.Request, user: User, values: dict[str, str],
                  errors: dict[str, str]) -> dict[str, Any]:
    policy = policy_of(request)
    cap = grant_cap_minutes(policy, user)
    denied = {d.platform for d in policy.deny}
    platforms = sorted(((pid, p.name) for pid, p in policy.platforms.items()
                        if pid not in denied), key=lambda item: item[1].lower())
    return {
        "platforms": platforms, "presets": [m for m in PRESETS if m <= cap], "cap": cap,
        "values": values, "errors": errors,
        "return_url": safe_return_url(request.app[keys.POLICY].current.catalog,
                                      values.get("url")),
    }


@routes.get("/access/request")
async def request_form(request: web.Request) -> web.Response:
    user = await require_user(request)
    values = {k: request.query.get(k, "") for k in ("platform", "access", "url")}
    return render(request, "request_form.html", **_form_context(request, user, values, {}))


def _said(request: web.Request, user: User, errors: dict[str, str]) -> dict[str, str]:
    """The policy's refusals of a request (``_create``) in the reader's language."""
    lang = language(request)
    t = Translator(DOMAIN, lang)
    if "duration" in errors:
        cap = grant_cap_minutes(policy_of(request), user)
        errors["duration"] = t("form_at_most", le=localize.duration(cap, lang), lt="")
    if "platform" in errors:
        errors["platform"] = t("form_platform_closed")
    return errors


def _form_values(form: Any) -> dict[str, Any]:
    """The form's fields as ``ExceptionIn`` input (duration: a preset, or custom hours)."""
    duration: Any = form.get("duration", "")
    if duration == "custom":
        hours = str(form.get("custom_hours", "")).replace(",", ".").strip()
        try:
            duration = round(float(hours) * 60)
        except ValueError:
            duration = hours or None
    return {"platform": form.get("platform", ""), "access": form.get("access", ""),
            "duration": duration or None, "justification": form.get("justification", ""),
            "ticket": form.get("ticket") or None}


async def _create(request: web.Request, user: User, data: ExceptionIn
                  ) -> AccessRequest | web.Response:
    policy = policy_of(request)
    if data.platform not in policy.platforms:
        return _invalid("platform", f"unknown platform {data.platform!r}")
    if any(d.platform == data.platform for d in policy.deny):
        return _invalid("platform", "this platform is blocked for everyone; no temporary "
                                    "access can be granted")
    cap = grant_cap_minutes(policy, user)
    if data.duration > cap:
        return _invalid("duration", f"at most {cap} minutes ({cap // 60} hours) for your roles")
    store = request.app[keys.STORE]
    try:
        created, new = await asyncio.to_thread(
            requests.submit_request, store, user.name, data.platform, data.access,
            data.duration, data.justification, data.ticket,
            max_pending=request.app[keys.SETTINGS].max_pending_requests)
    except InvalidInput as exc:
        return _invalid(exc.field, exc.message)
    except TooManyPending as exc:
        return json_error(429, str(exc), details=[{"field": "platform", "message": str(exc)}])
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return store_unavailable(exc)
    if new:  # a repeat updated the pending request: approvers were told already
        notify_approvers(request.app, created, user)
    return created


@routes.post("/api/v1/exceptions")
async def create_exception(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    if request.content_type == "application/json":
        if session_of(request) is not None and "Authorization" not in request.headers:
            await check_csrf(request, request.headers.get(CSRF_HEADER))
        data = ExceptionIn.model_validate(await read_json(request))
        result = await _create(request, user, data)
        if isinstance(result, web.Response):
            return result
        body = ExceptionCreated(id=result.id, status="pending").model_dump()
        return web.json_response(body, status=201,
                                 headers={"Location": f"/api/v1/exceptions/{result.id}"})
    form = await read_form(request)
    await check_csrf(request, str(form.get(CSRF_FIELD, "")))
    raw = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    try:
        data = ExceptionIn.model_validate(_form_values(form))
    except ValidationError as exc:
        if not wants_html(request):
            raise
        lang = language(request)
        errors = form_errors(exc, Translator(DOMAIN, lang), lambda field, limit: (
            localize.duration(limit, lang) if field == "duration" and isinstance(limit, int)
            else str(limit)))
        return render(request, "request_form.html", status=422,
                      **_form_context(request, user, raw, errors))
    result = await _create(request, user, data)
    if isinstance(result, web.Response):
        if not wants_html(request) or result.status >= 500:
            return result
        details = json.loads(result.text or "{}").get("details", [])
        errors = _said(request, user, {d["field"]: d["message"] for d in details})
        return render(request, "request_form.html", status=result.status,
                      **_form_context(request, user, raw, errors))
    if not wants_html(request):
        return web.json_response({"id": result.id, "status": "pending"}, status=201)
    target = f"/access/mine?sent={result.id}"
    back = safe_return_url(request.app[keys.POLICY].current.catalog, raw.get("url"))
    if back:
        target += "&url=" + quote(back, safe="")
    raise web.HTTPSeeOther(target)


# --- My requests ----------------------------------------------------------------------------


async def _mine(request: web.Request, user: User) -> list[ExceptionOut]:
    store = request.app[keys.STORE]

    def load() -> list[ExceptionOut]:
        return with_expiry(store, requests.list_requests(store, user=user.name, limit=50))

    return await asyncio.to_thread(load)


@routes.get("/api/v1/exceptions/mine")
async def mine_api(request: web.Request) -> web.Response:
    user = await require_user(request)
    found = await _mine(request, user)
    return web.json_response(ExceptionList(requests=found).model_dump(mode="json"))


@routes.get("/access/mine")
async def mine_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    found = await _mine(request, user)
    policy = policy_of(request)
    names = {pid: p.name for pid, p in policy.platforms.items()}
    back = safe_return_url(request.app[keys.POLICY].current.catalog, request.query.get("url"))
    t = Translator("service", language(request))
    texts = {status: t(f"status_{status}") for status in requests.STATUSES}
    return render(request, "mine.html", requests=found, names=names,
                  sent=request.query.get("sent", ""), return_url=back, texts=texts,
                  tz=policy.institution.timezone)


@routes.get("/api/v1/exceptions/{id}")
async def get_exception(request: web.Request) -> web.Response:
    user = await require_user(request)
    store = request.app[keys.STORE]
    found = await asyncio.to_thread(requests.get_request, store, request.match_info["id"])
    if found is None:
        return json_error(404, "no such request")
    if found.user != user.name:
        requester = await asyncio.to_thread(users.get_user, store, found.user)
        if not may_decide(policy_of(request), user, requester, found.platform, found.user) \
                and "admin" not in user.roles:
            return json_error(404, "no such request")
    out = await asyncio.to_thread(with_expiry, store, [found])
    return web.json_response(out[0].model_dump(mode="json"))


# --- e-mail ---------------------------------------------------------------------------------

MAILS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("sargs.mail_tasks", set)


def _mail_text(key: str, domain: str = "service", **values: object) -> str:
    return "\n\n".join(text(domain, key, lang, **values) for lang in LANGUAGES)


def send_mail(app: web.Application, to: str, subject_key: str, body_key: str,
              *, domain: str = "service", **values: object) -> None:
    """Send an e-mail in the background (all four languages), if SMTP is configured;
    the texts come from ``proxy/locales/<domain>.yaml``."""
    settings = app[keys.SETTINGS]
    if not settings.smtp_host or not to:
        return
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = " / ".join(
        dict.fromkeys(text(domain, subject_key, lang, **values) for lang in LANGUAGES))
    message.set_content(_mail_text(body_key, domain, **values))

    async def deliver() -> None:
        try:
            await aiosmtplib.send(message, hostname=settings.smtp_host,
                                  port=settings.smtp_port, timeout=30)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("e-mail to %s not sent: %s", to, exc)

    tasks = app[MAILS]
    task = asyncio.get_running_loop().create_task(deliver())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def notify_approvers(app: web.Application, created: AccessRequest, requester: User) -> None:
    settings = app[keys.SETTINGS]
    if not settings.smtp_host:
        return
    policy = app[keys.POLICY].current.loaded.policy
    store = app[keys.STORE]
    link = f"{settings.public_service_url}/approvals"

    async def run() -> None:
        candidates = await asyncio.to_thread(users.list_users, store)
        for approver in candidates:
            if approver.email and may_decide(policy, approver, requester, created.platform,
                                             created.user):
                send_mail(app, approver.email, "mail_new_subject", "mail_new_body",
                          user=created.user, platform=created.platform, link=link)

    tasks = app[MAILS]
    task = asyncio.get_running_loop().create_task(run())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def notify_requester(app: web.Application, decided: AccessRequest, email: str | None,
                     until: str = "") -> None:
    settings = app[keys.SETTINGS]
    link = f"{settings.public_service_url}/access/mine"
    key = {"approved": "mail_approved", "rejected": "mail_rejected",
           "revoked": "mail_revoked"}.get(decided.status)
    if key is None or not email:
        return
    send_mail(app, email, key + "_subject", key + "_body", platform=decided.platform,
              until=until, reason=decided.reason or "", link=link)


async def _mail_ctx(app: web.Application) -> Any:
    tasks: set[asyncio.Task[None]] = set()
    app[MAILS] = tasks
    yield
    pending = list(tasks)
    if pending:
        await asyncio.wait(pending, timeout=10)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_mail_ctx)
    app.add_routes(routes)
    app.router.add_static("/assets/", Path(__file__).parent / "static", show_index=False)

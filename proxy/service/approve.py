"""Approvers' decisions: the queue, approve / reject, active grants and revoking them.

Pages (server-rendered, every form with a CSRF token): ``/approvals`` (pending requests
this approver may decide, with a badge of how many), ``POST /approvals/{id}/approve``
(duration ≤ the requester's cap; the clock starts now), ``POST /approvals/{id}/reject``
(reason required), ``/grants`` and ``POST /grants/{id}/revoke``. The audit and dashboard
pages are in ``auditpages.py``, the background jobs in ``housekeeping.py``.

The same decisions over JSON: ``GET /api/v1/exceptions?status=pending``,
``POST /api/v1/exceptions/{id}/approve|reject``, ``GET /api/v1/grants``,
``POST /api/v1/grants/{id}/revoke``.

Every decision is written through the store, which audits it and bumps the change sequence
in the same transaction (so gateways learn of it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from proxy.i18n import catalog
from proxy.policy.scopes import grant_cap_minutes, may_decide
from proxy.service import keys
from proxy.service.access import (
    ExceptionList,
    ExceptionOut,
    notify_requester,
    policy_of,
    read_json,
    store_unavailable,
    with_expiry,
)
from proxy.service.auth import require_approver, session_of
from proxy.service.csrf import CSRF_FIELD, CSRF_HEADER, check_csrf
from proxy.service.errors import json_error, read_form
from proxy.service.pages import local_time, render
from proxy.store import (
    AlreadyDecided,
    InvalidInput,
    NotFound,
    SelfDecision,
    StoreError,
    grants,
    requests,
    users,
)
from proxy.store.requests import MAX_MINUTES, AccessRequest
from proxy.store.users import User

log = logging.getLogger("sargs.service.approve")
routes = web.RouteTableDef()


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration: int | None = Field(default=None, ge=1, le=MAX_MINUTES,
                                 description="Minutes from now; default: what was asked.")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=2000, description="Shown to the requester.")


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str | None = Field(default=None, max_length=2000)


class GrantOut(BaseModel):
    id: str
    user: str
    platform: str
    action: str
    granted_by: str
    starts_at: datetime
    expires_at: datetime
    status: Literal["active", "expired", "revoked"]
    request_id: str | None


class GrantList(BaseModel):
    grants: list[GrantOut]


def grant_out(g: grants.Grant) -> GrantOut:
    return GrantOut(id=g.id, user=g.user, platform=g.platform, action=g.action,
                    granted_by=g.granted_by, starts_at=g.starts_at, expires_at=g.expires_at,
                    status=g.status, request_id=g.request_id)


# --- what an approver may decide ------------------------------------------------------------


async def decidable(request: web.Request, approver: User
                    ) -> list[tuple[AccessRequest, User | None, int]]:
    """Pending requests this approver may decide, oldest first, with requester and cap."""
    store = request.app[keys.STORE]
    policy = policy_of(request)

    def load() -> tuple[list[AccessRequest], dict[str, User]]:
        pending = requests.list_requests(store, status="pending", limit=500,
                                         oldest_first=True)
        return pending, {u.name: u for u in users.list_users(store)}

    pending, people = await asyncio.to_thread(load)
    out = []
    for r in pending:
        requester = people.get(r.user)
        if may_decide(policy, approver, requester, r.platform, r.user):
            out.append((r, requester, grant_cap_minutes(policy, requester)))
    return out


class Refused(Exception):
    """A decision refused: the HTTP status, the page's message key and why (English)."""

    def __init__(self, status: int, key: str, message: str) -> None:
        super().__init__(message)
        self.status, self.key, self.message = status, key, message


async def _checked(request: web.Request, approver: User, request_id: str
                   ) -> tuple[AccessRequest, User | None]:
    store = request.app[keys.STORE]
    found = await asyncio.to_thread(requests.get_request, store, request_id)
    if found is None:
        raise Refused(404, "msg_not_found", "no such request")
    if found.user == approver.name:
        raise Refused(403, "msg_self", "nobody approves or rejects their own request")
    requester = await asyncio.to_thread(users.get_user, store, found.user)
    if not may_decide(policy_of(request), approver, requester, found.platform, found.user):
        raise Refused(403, "msg_not_yours", "the approval policy does not let you decide "
                                            "this request")
    return found, requester


async def store_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a thread, the store's refusals of a decision as
    ``Refused`` (access requests here, reviews in ``reviews.py``)."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except NotFound as exc:
        raise Refused(404, "msg_not_found", str(exc)) from None
    except SelfDecision as exc:
        raise Refused(403, "msg_self", str(exc)) from None
    except AlreadyDecided as exc:
        raise Refused(409, "msg_done", f"already {exc.status}") from None
    except InvalidInput as exc:
        raise Refused(422, "msg_invalid", f"{exc.field}: {exc.message}") from None


async def approve_request(request: web.Request, approver: User, request_id: str,
                          minutes: int | None) -> tuple[AccessRequest, grants.Grant]:
    found, requester = await _checked(request, approver, request_id)
    cap = grant_cap_minutes(policy_of(request), requester)
    minutes = min(found.duration_minutes, cap) if minutes is None else minutes
    if minutes > cap:
        raise Refused(422, "msg_too_long", f"duration: at most {cap} minutes for this "
                                            "requester's roles")
    decided, grant = await store_call(requests.approve, request.app[keys.STORE], request_id,
                                       approver.name, duration_minutes=minutes)
    notify_requester(request.app, decided,
                     requester.email if requester else None,
                     until=local_time(request, grant.expires_at))
    return decided, grant


async def reject_request(request: web.Request, approver: User, request_id: str,
                         reason: str) -> AccessRequest:
    _, requester = await _checked(request, approver, request_id)
    decided: AccessRequest = await store_call(requests.reject, request.app[keys.STORE],
                                               request_id, approver.name, reason)
    notify_requester(request.app, decided, requester.email if requester else None)
    return decided


async def revoke_grant(request: web.Request, approver: User, grant_id: str,
                       reason: str | None) -> grants.Grant:
    store = request.app[keys.STORE]
    grant = await asyncio.to_thread(grants.get_grant, store, grant_id)
    if grant is None:
        raise Refused(404, "msg_not_found", "no such grant")
    requester = await asyncio.to_thread(users.get_user, store, grant.user)
    if grant.granted_by != approver.name and not may_decide(
            policy_of(request), approver, requester, grant.platform, grant.user):
        raise Refused(403, "msg_not_yours", "the approval policy does not let you revoke "
                                            "this grant")
    revoked: grants.Grant = await store_call(grants.revoke, store, grant_id, approver.name,
                                              reason)
    if requester is not None and grant.request_id:
        found = await asyncio.to_thread(requests.get_request, store, grant.request_id)
        if found is not None:
            notify_requester(request.app, found, requester.email)
    return revoked


# --- JSON API -------------------------------------------------------------------------------


async def _api_guard(request: web.Request) -> User:
    approver = await require_approver(request)
    if request.method == "POST" and session_of(request) is not None \
            and "Authorization" not in request.headers:
        await check_csrf(request, request.headers.get(CSRF_HEADER))
    return approver


@routes.get("/api/v1/exceptions")
async def list_api(request: web.Request) -> web.Response:
    approver = await _api_guard(request)
    status = request.query.get("status", "pending")
    if status not in requests.STATUSES:
        return json_error(422, "invalid request: status", details=[
            {"field": "status", "message": f"one of {', '.join(requests.STATUSES)}"}])
    store = request.app[keys.STORE]
    if status == "pending":
        found = [r for r, _, _ in await decidable(request, approver)]
    else:
        found = await asyncio.to_thread(requests.list_requests, store, status=status,
                                        limit=200)
    out = await asyncio.to_thread(with_expiry, store, found)
    return web.json_response(ExceptionList(requests=out).model_dump(mode="json"))


def _refused_json(exc: Refused) -> web.Response:
    field = exc.message.split(":", 1)[0] if exc.status == 422 else None
    if field:
        return json_error(422, f"invalid request: {field}",
                          details=[{"field": field, "message": exc.message}])
    return json_error(exc.status, exc.message)


@routes.post("/api/v1/exceptions/{id}/approve")
async def approve_api(request: web.Request) -> web.Response:
    approver = await _api_guard(request)
    body = ApproveIn.model_validate(await read_json(request))
    try:
        decided, grant = await approve_request(request, approver, request.match_info["id"],
                                               body.duration)
    except Refused as exc:
        return _refused_json(exc)
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return store_unavailable(exc)
    out = ExceptionOut.model_validate({
        **(await asyncio.to_thread(with_expiry, request.app[keys.STORE], [decided]))[0]
        .model_dump(), "expires_at": grant.expires_at})
    return web.json_response(out.model_dump(mode="json"))


@routes.post("/api/v1/exceptions/{id}/reject")
async def reject_api(request: web.Request) -> web.Response:
    approver = await _api_guard(request)
    body = RejectIn.model_validate(await read_json(request))
    try:
        decided = await reject_request(request, approver, request.match_info["id"],
                                       body.reason)
    except Refused as exc:
        return _refused_json(exc)
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return store_unavailable(exc)
    out = await asyncio.to_thread(with_expiry, request.app[keys.STORE], [decided])
    return web.json_response(out[0].model_dump(mode="json"))


@routes.get("/api/v1/grants")
async def grants_api(request: web.Request) -> web.Response:
    await _api_guard(request)
    active = await asyncio.to_thread(grants.list_active, request.app[keys.STORE])
    return web.json_response(
        GrantList(grants=[grant_out(g) for g in active]).model_dump(mode="json"))


@routes.post("/api/v1/grants/{id}/revoke")
async def revoke_api(request: web.Request) -> web.Response:
    approver = await _api_guard(request)
    body = RevokeIn.model_validate(await read_json(request))
    try:
        revoked = await revoke_grant(request, approver, request.match_info["id"], body.reason)
    except Refused as exc:
        return _refused_json(exc)
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return store_unavailable(exc)
    return web.json_response(grant_out(revoked).model_dump(mode="json"))


# --- pages ----------------------------------------------------------------------------------


async def pending_count(request: web.Request, approver: User) -> int:
    return len(await decidable(request, approver))


@routes.get("/approvals")
async def queue_page(request: web.Request) -> web.Response:
    approver = await require_approver(request)
    items = await decidable(request, approver)
    names = {pid: p.name for pid, p in policy_of(request).platforms.items()}
    store = request.app[keys.STORE]
    people = sorted({r.user for r, _, _ in items})

    def histories() -> dict[str, list[AccessRequest]]:
        """Each requester's earlier requests (newest first), for the approver to weigh."""
        return {u: requests.list_requests(store, user=u, limit=HISTORY + len(items))
                for u in people}

    earlier = await asyncio.to_thread(histories)
    return render(request, "approvals.html", items=items, names=names, badge=len(items),
                  msg=_msg(request), presets=(60, 240, 480, 1440, 4320),
                  history={u: [r for r in found if r.status != "pending"][:HISTORY]
                           for u, found in earlier.items()})


HISTORY = 5
"""Earlier requests of a requester shown in the approvers' queue."""


async def _form(request: web.Request) -> Any:
    form = await read_form(request)
    await check_csrf(request, str(form.get(CSRF_FIELD, "")))
    return form


def _msg(request: web.Request) -> str:
    key = request.query.get("msg", "")
    return key if key.startswith("msg_") and key in catalog("service") else ""


def _back(path: str, key: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?msg={key}")


@routes.post("/approvals/{id}/approve")
async def approve_form(request: web.Request) -> web.StreamResponse:
    approver = await require_approver(request)
    form = await _form(request)
    raw = str(form.get("duration", "")).strip()
    if raw == "custom":
        try:
            minutes: int | None = round(float(str(form.get("custom_hours", "")).replace(
                ",", ".")) * 60)
        except ValueError:
            raise _back("/approvals", "msg_invalid") from None
    else:
        minutes = int(raw) if raw.isdigit() else None
    if minutes is not None and not 1 <= minutes <= MAX_MINUTES:
        raise _back("/approvals", "msg_invalid")
    try:
        await approve_request(request, approver, request.match_info["id"], minutes)
    except Refused as exc:
        raise _back("/approvals", exc.key) from None
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return store_unavailable(exc)
    raise _back("/approvals", "msg_approved")


@routes.post("/approvals/{id}/reject")
async def reject_form(request: web.Request) -> web.StreamResponse:
    approver = await require_approver(request)
    form = await _form(request)
    reason = str(form.get("reason", "")).strip()
    if not reason:
        raise _back("/approvals", "msg_reason")
    try:
        await reject_request(request, approver, request.match_info["id"], reason[:2000])
    except Refused as exc:
        raise _back("/approvals", exc.key) from None
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return store_unavailable(exc)
    raise _back("/approvals", "msg_rejected")


@routes.get("/grants")
async def grants_page(request: web.Request) -> web.Response:
    approver = await require_approver(request)
    active = await asyncio.to_thread(grants.list_active, request.app[keys.STORE])
    names = {pid: p.name for pid, p in policy_of(request).platforms.items()}
    return render(request, "grants.html", grants=active, names=names,
                  badge=await pending_count(request, approver), msg=_msg(request))


@routes.post("/grants/{id}/revoke")
async def revoke_form(request: web.Request) -> web.StreamResponse:
    approver = await require_approver(request)
    form = await _form(request)
    reason = str(form.get("reason", "")).strip()[:2000] or None
    try:
        await revoke_grant(request, approver, request.match_info["id"], reason)
    except Refused as exc:
        raise _back("/grants", exc.key) from None
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return store_unavailable(exc)
    raise _back("/grants", "msg_revoked")



def setup(app: web.Application) -> None:
    app.add_routes(routes)

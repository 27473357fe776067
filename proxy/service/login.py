"""Login, logout and "my sessions" (form login; API clients use HTTP Basic, ``auth.py``).

* ``GET/POST /login``: the form; a success starts a session (``proxy/store/sessions.py``)
  and goes to ``next`` when it is a path on this service (``redirects.safe_path``).
  Every failure is limited and recorded in the audit log (user, client address, count;
  never the password).
* ``POST /logout``: ends this session on every node at once.
* ``GET /sessions``: the user's live sessions (started, last seen, address, browser);
  ``POST /sessions/{id}/end`` ends one, ``POST /sessions/end-all`` ends them all ("log out
  everywhere", this one included).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp import web

from proxy.service import keys, negotiate
from proxy.service.auth import (
    AUTH,
    SESSION_COOKIE,
    current_user,
    require_user,
    session_of,
    set_cookie,
)
from proxy.service.clients import client_address
from proxy.service.csrf import CSRF_FIELD, PRE_COOKIE, check_csrf
from proxy.service.errors import read_form
from proxy.service.pages import render
from proxy.service.redirects import safe_path
from proxy.store import audit, sessions, users
from proxy.store.users import User

routes = web.RouteTableDef()
HOME = "/access/mine"


def _next(value: str | None) -> str:
    return safe_path(value) or HOME


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    target = _next(request.query.get("next"))
    signed = await negotiate.sign_on(request)  # Kerberos first (proxy/service/negotiate.py)
    if isinstance(signed, User):
        await negotiate.record_login(request, signed)
        raise await _signed_in(request, signed, target)
    page = render(request, "login.html", status=200, next=target, name="",
                  error=("negotiate_no_role", {}) if signed == "no-role" else None)
    return negotiate.challenge(page) if negotiate.offers(request) and not signed else page


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    name = _str(form.get("name")).strip()
    password = _str(form.get("password"))
    target = _next(_str(form.get("next")))
    auth = request.app[AUTH]
    store = request.app[keys.STORE]
    address = client_address(request)
    wait = auth.limiter.retry_after(address, name)
    if wait:
        response = render(request, "login.html", status=429, next=target, name=name,
                          error=("login_wait", {"seconds": wait}))
        response.headers["Retry-After"] = str(wait)
        return response
    user = await asyncio.to_thread(users.verify_password, store, name, password) \
        if name and password else None
    if user is None:
        count = auth.limiter.failed(address, name)
        await asyncio.to_thread(audit.record_failed_login, store, name, address, "service",
                                count)
        return render(request, "login.html", status=401, next=target, name=name,
                      error=("login_failed", {}))
    auth.limiter.succeeded(address, name)
    await asyncio.to_thread(audit.append, store, audit.Kind.login, actor=user.name,
                            user=user.name, details={"address": address, "via": "service"})
    raise await _signed_in(request, user, target)


async def _signed_in(request: web.Request, user: User, target: str) -> web.HTTPSeeOther:
    """A new session for ``user`` and the redirect to ``target`` that sets its cookie."""
    auth = request.app[AUTH]
    token, _ = await asyncio.to_thread(
        sessions.start, request.app[keys.STORE], user.name,
        timedelta(seconds=auth.session_seconds), address=client_address(request),
        agent=request.headers.get("User-Agent", ""))
    response = web.HTTPSeeOther(target)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(auth.session_seconds))
    response.del_cookie(PRE_COOKIE, path="/")
    return response


def _signed_out() -> web.HTTPSeeOther:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    user = await current_user(request)
    sid = session_of(request)
    if sid is not None:
        await asyncio.to_thread(sessions.end, request.app[keys.STORE], sid,
                                by=user.name if user else None)
    if user is not None:
        await asyncio.to_thread(audit.append, request.app[keys.STORE], audit.Kind.logout,
                                actor=user.name, user=user.name)
    raise _signed_out()


@routes.get("/sessions")
async def sessions_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    live = await asyncio.to_thread(sessions.list_live, request.app[keys.STORE], user.name)
    return render(request, "sessions.html", sessions=live, current=session_of(request))


@routes.post("/sessions/{id}/end")
async def end_one(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await read_form(request)
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    sid = request.match_info["id"]
    store = request.app[keys.STORE]
    mine = {s.id for s in await asyncio.to_thread(sessions.list_live, store, user.name)}
    if sid in mine:
        await asyncio.to_thread(sessions.end, store, sid, by=user.name)
        await asyncio.to_thread(audit.append, store, audit.Kind.logout, actor=user.name,
                                user=user.name, details={"sessions_ended": 1})
    if sid == session_of(request):
        raise _signed_out()
    raise web.HTTPSeeOther("/sessions")


@routes.post("/sessions/end-all")
async def end_all(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await read_form(request)
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    store = request.app[keys.STORE]
    ended = await asyncio.to_thread(sessions.end_all, store, user.name, by=user.name)
    await asyncio.to_thread(audit.append, store, audit.Kind.logout, actor=user.name,
                            user=user.name, details={"everywhere": True,
                                                     "sessions_ended": ended})
    raise _signed_out()


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def setup(app: web.Application) -> None:
    app.add_routes(routes)

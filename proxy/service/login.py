"""The login and logout pages (form login; API clients use HTTP Basic, see ``auth.py``)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proxy.service import keys
from proxy.service.auth import AUTH, SESSION_COOKIE, current_user, set_cookie
from proxy.service.clients import client_address
from proxy.service.csrf import CSRF_FIELD, PRE_COOKIE, check_csrf
from proxy.service.pages import render
from proxy.store import audit, users

routes = web.RouteTableDef()


def _safe_next(value: str | None) -> str:
    """Only paths on this service (never ``//host`` or ``https://…``: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/access/mine"
    return value


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", status=200, next=_safe_next(request.query.get("next")),
                  error=None, name="")


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    name = _str(form.get("name")).strip()
    password = _str(form.get("password"))
    target = _safe_next(_str(form.get("next")))
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
        auth.limiter.failed(address, name)
        await asyncio.to_thread(audit.append, store, audit.Kind.login_failed, user=name[:128],
                                details={"address": address, "via": "service"})
        return render(request, "login.html", status=401, next=target, name=name,
                      error=("login_failed", {}))
    auth.limiter.succeeded(address, name)
    session = auth.new_session(user)
    await asyncio.to_thread(audit.append, store, audit.Kind.login, actor=user.name,
                            user=user.name, details={"address": address, "via": "service"})
    response = web.HTTPSeeOther(target)
    set_cookie(request, response, SESSION_COOKIE, auth.encode(session),
               max_age=int(auth.session_seconds))
    response.del_cookie(PRE_COOKIE, path="/")
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    user = await current_user(request)
    if user is not None:
        await asyncio.to_thread(audit.append, request.app[keys.STORE], audit.Kind.logout,
                                actor=user.name, user=user.name)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""




def setup(app: web.Application) -> None:
    app.add_routes(routes)

"""``GET /``: where staff, approvers and IT start — links to every page, and the guidelines."""

from __future__ import annotations

from aiohttp import web

from proxy.service import keys
from proxy.service.auth import current_user
from proxy.service.pages import language, render
from proxy.store.users import SERVICE_ROLES

routes = web.RouteTableDef()


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    user = await current_user(request)
    lang = language(request)
    policy = request.app[keys.POLICY].current.loaded.policy
    guidelines = [(g.title.get(lang), g.text.get(lang)) for g in policy.guidelines.values()]
    approver = user is not None and bool(set(user.roles) & SERVICE_ROLES)
    return render(request, "home.html", guidelines=guidelines, approver=approver)


def setup(app: web.Application) -> None:
    app.add_routes(routes)

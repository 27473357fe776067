"""``GET /static/compose-guard.js``: the compose guard's parts joined as one script.

Registered before the ``/static/`` directory route (which serves the extension's other
files, the parts among them) so that this path is answered here (proxy/guardscript.py).
"""

from __future__ import annotations

from aiohttp import web

from proxy.guardscript import GuardScript

routes = web.RouteTableDef()
SCRIPT = web.AppKey("sargs_guard_script", GuardScript)


@routes.get("/static/compose-guard.js")
async def compose_guard(request: web.Request) -> web.Response:
    found = request.app[SCRIPT].get()
    if found is None:
        raise web.HTTPNotFound(text="content script not installed")
    body, etag = found
    headers = {"ETag": etag, "Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="text/javascript", charset="utf-8",
                        headers=headers)


def setup(app: web.Application) -> None:
    app[SCRIPT] = GuardScript()
    app.add_routes(routes)

"""The aiohttp service: policy, checks, static content script, health."""

from __future__ import annotations

from aiohttp import web

from proxy.runtime import PolicyState
from proxy.service import bundle, check, deploy, keys, me, metrics
from proxy.service.errors import error_middleware
from proxy.settings import ROOT, Settings

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    state = request.app[keys.POLICY]
    return web.json_response({"status": "ok", "policy": state.current.version})


def create_app(settings: Settings, policy: PolicyState | None = None) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware], client_max_size=settings.max_body_bytes
    )
    app[keys.SETTINGS] = settings
    app[keys.POLICY] = policy or PolicyState(settings.policy)
    app.add_routes(routes)
    app.router.add_static("/static/", ROOT / "extension", show_index=False)
    deploy.setup(app)  # PAC file and CA download (proxy/service/deploy.py)
    metrics.setup(app)  # GET /metrics, request latency (proxy/service/metrics.py)
    check.setup(app)  # POST /api/v1/check, GET /api/v1/policy/summary (proxy/service/check.py)
    bundle.setup(app)  # grant bundle, change stream, gateway events (proxy/service/bundle.py)
    me.setup(app)  # /api/v1/me and /api/v1/guidelines for the extension (proxy/service/me.py)
    return app

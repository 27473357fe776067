"""The aiohttp service: policy, checks, static content script, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.runtime import PolicyState
from proxy.service import (
    access,
    approve,
    auditpages,
    auth,
    bundle,
    check,
    deploy,
    guidelines,
    home,
    housekeeping,
    keys,
    login,
    me,
    metrics,
    metricsauth,
    openapi,
    pipeline,
    policywatch,
    proceed,
    reviewpages,
    reviews,
    script,
)
from proxy.settings import ROOT, Settings
from proxy.store.db import open_configured

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    state = request.app[keys.POLICY]
    return web.json_response({"status": "ok", "policy": state.current.version})


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the store (``Settings.database``) unless a test put one in the app already;
    a store given without audit keys uses the settings' (``AUDIT_KEY_FILE``)."""
    settings = app[keys.SETTINGS]
    opened = None
    if keys.STORE not in app:
        opened = await asyncio.to_thread(open_configured, settings)
        app[keys.STORE] = opened
    given = app[keys.STORE]
    if given.audit_key_file is None and not given.audit_key_env:
        given.audit_key_file = settings.audit_keys_path
        given.audit_key_env = settings.audit_key.get_secret_value()
    yield
    if opened is not None:
        opened.close()


def create_app(settings: Settings, policy: PolicyState | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.POLICY] = policy or PolicyState(settings.policy)
    app.cleanup_ctx.append(_store_ctx)  # first: the other parts use the store
    policywatch.setup(app)  # reload on change, audit every reload (proxy/service/policywatch.py)
    pipeline.setup(app)  # metrics, CORS, cross-site refusal, errors (proxy/service/pipeline.py)
    app.add_routes(routes)
    script.setup(app)  # GET /static/compose-guard.js, before /static/ (proxy/service/script.py)
    app.router.add_static("/static/", ROOT / "extension", show_index=False)
    home.setup(app)  # GET /: links and guidelines (proxy/service/home.py)
    guidelines.setup(app)  # GET /guidelines?lang=: the clauses findings link to
    deploy.setup(app)  # PAC file and CA download (proxy/service/deploy.py)
    metrics.setup(app)  # GET /metrics, request latency (proxy/service/metrics.py)
    metricsauth.setup(app)  # /metrics behind its token (proxy/service/metricsauth.py)
    check.setup(app)  # POST /api/v1/check, GET /api/v1/policy/summary (proxy/service/check.py)
    proceed.setup(app)  # POST /api/v1/proceed: ways forward (proxy/service/proceed.py)
    bundle.setup(app)  # grant bundle, change stream, gateway events (proxy/service/bundle.py)
    me.setup(app)  # /api/v1/me and /api/v1/guidelines for the extension (proxy/service/me.py)
    auth.setup(app)  # sessions, Basic, require_* (proxy/service/auth.py; CSRF: csrf.py)
    login.setup(app)  # the login and logout pages (proxy/service/login.py)
    access.setup(app)  # staff: request form, /api/v1/exceptions, My requests
    approve.setup(app)  # approvers: queue, decisions, grants (proxy/service/approve.py)
    reviews.setup(app)  # review before posting: the API, decisions, retention
    reviewpages.setup(app)  # and the reviewers' pages
    auditpages.setup(app)  # approvers: audit log and dashboard (proxy/service/auditpages.py)
    housekeeping.setup(app)  # lapsing, audit retention (proxy/service/housekeeping.py)
    openapi.setup(app)  # GET /api/v1/openapi.json (proxy/service/openapi.py)
    return app

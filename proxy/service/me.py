"""What the extension's popup shows: who I am and what each platform allows me now.

- ``GET /api/v1/me``: the signed-in user, their roles, and per platform the effective
  access now (``AccessPolicy.decide`` with the user's active grants) with the grant and its
  expiry. Login: the service's own (``proxy.service.auth.current_user``: session cookie
  or Basic).
- ``GET /api/v1/guidelines?lang=``: the policy's guidelines in one language.

CORS: browser extensions call these from ``chrome-extension://ID`` or
``moz-extension://UUID``. Only the extension origins listed in
``Settings.extension_origins`` are ever echoed (never ``*``, never a web page's origin, and
with the list empty, the default, no extension at all: any other installed extension must
not read who is signed in). Chrome IDs are fixed per extension (list
``chrome-extension://ID`` of the managed extension); Firefox UUIDs are random per profile,
so ``moz-extension://*`` allows them.
"""

from __future__ import annotations

import asyncio
import fnmatch
from datetime import UTC, datetime

from aiohttp import web

from proxy.i18n import LANGUAGES, negotiate
from proxy.policy.decide import Grant, RequestKind, Subject
from proxy.service import cors, keys
from proxy.service.auth import current_user, unauthorized
from proxy.store import grants
from proxy.store.db import Store

routes = web.RouteTableDef()

EXTENSION_SCHEMES = ("chrome-extension://", "moz-extension://", "safari-web-extension://")
CORS_PATHS = frozenset({"/api/v1/me", "/api/v1/guidelines"})


def allowed_origin(origin: str, allowed: list[str]) -> bool:
    """Whether ``origin`` (an Origin header) may read the user's data with credentials."""
    if not origin.startswith(EXTENSION_SCHEMES) or "/" in origin.split("://", 1)[1]:
        return False
    return any(fnmatch.fnmatchcase(origin, pattern.rstrip("/")) for pattern in allowed)


def _cors_headers(request: web.Request) -> dict[str, str]:
    origin = request.headers.get("Origin", "")
    if not origin or not allowed_origin(origin, request.app[keys.SETTINGS].extension_origins):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


async def _preflight(request: web.Request) -> web.Response:
    headers = _cors_headers(request)
    if not headers:
        raise web.HTTPForbidden(text="origin not allowed")
    return web.Response(status=204, headers={
        **headers,
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Accept-Language",
        "Access-Control-Max-Age": "600",
    })


# --- who is asking --------------------------------------------------------------------


async def signed_in(request: web.Request) -> tuple[str, tuple[str, ...]] | None:
    """(user name, roles) of whoever is asking (session cookie or Basic), or None."""
    user = await current_user(request)
    return None if user is None else (user.name, tuple(user.roles))


def _active_grants(store: Store, user: str, now: datetime) -> list[Grant]:
    return [g.to_policy_grant() for g in grants.list_active(store, now, user=user)]


def _lang(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    return asked if asked in LANGUAGES else negotiate(request.headers.get("Accept-Language"))


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    compiled = request.app[keys.POLICY].current
    policy = compiled.loaded.policy
    who = await signed_in(request)
    if who is None:
        # An extension's popup gets plain JSON: a challenge would make the browser show
        # its own login box over the popup.
        raise unauthorized(request, "sign in to the Sargs service", policy.identity.realm)
    name, roles = who
    lang = _lang(request)
    now = datetime.now(UTC)
    active = await asyncio.to_thread(_active_grants, request.app[keys.STORE], name, now)
    subject = Subject(name, frozenset(roles), "service")
    platforms = []
    for platform_id, platform in policy.platforms.items():
        page = compiled.access.decide(subject, platform_id, RequestKind.page, now, active)
        post = compiled.access.decide(subject, platform_id, RequestKind.post, now, active)
        grant = next((g for g in active if g.id == page.grant), None)
        platforms.append({
            "id": platform_id,
            "name": platform.name,
            "action": str(page.action),
            "can_view": page.allowed,
            "can_post": post.allowed,
            "rule": str(page.rule),
            "role": page.role,
            "grant": None if grant is None else {
                "id": grant.id, "action": str(grant.action),
                "expires_at": grant.expires_at.isoformat(),
            },
        })
    base = settings.public_service_url
    return web.json_response({
        "user": name,
        "roles": [
            {"id": r, "name": policy.roles[r].name.get(lang) if r in policy.roles else r}
            for r in roles
        ],
        "lang": lang,
        "policy": compiled.version,
        "now": now.isoformat(),
        "platforms": platforms,
        "grants": [
            {"id": g.id, "platform": g.platform, "action": str(g.action),
             "expires_at": g.expires_at.isoformat()}
            for g in active
        ],
        "request_access_url": f"{base}/access/request",
    }, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/guidelines")
async def guidelines(request: web.Request) -> web.Response:
    compiled = request.app[keys.POLICY].current
    lang = _lang(request)
    return web.json_response({
        "lang": lang,
        "policy": compiled.version,
        "guidelines": [
            {"id": gid, "title": g.title.get(lang), "text": g.text.get(lang)}
            for gid, g in compiled.loaded.policy.guidelines.items()
        ],
    })


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    for path in CORS_PATHS:
        app.router.add_route("OPTIONS", path, _preflight)
    # every answer on these paths (errors such as 401 included), for an allowed origin
    cors.allow(app, CORS_PATHS, _cors_headers)

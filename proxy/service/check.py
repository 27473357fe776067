"""``POST /api/v1/check`` (the contract in DESIGN.md) and ``GET /api/v1/policy/summary``.

Page scripts of any origin call these (the content script runs on the platforms' pages):
both answer CORS preflights and carry ``Access-Control-Allow-Origin: *``; no credentials
are involved. Bodies larger than ``max_body_bytes`` get 413, invalid fields 422 naming the
field (``errors.error_middleware``). The draft text is never stored or logged.
"""

from __future__ import annotations

import json

from aiohttp import web

from proxy.compliance.config import RULE_IDS
from proxy.compliance.model import CheckRequest
from proxy.i18n import negotiate
from proxy.service import keys
from proxy.service.errors import json_error

CHECK = "/api/v1/check"
SUMMARY = "/api/v1/policy/summary"
_CORS_PATHS = frozenset({CHECK, SUMMARY})

routes = web.RouteTableDef()


@routes.post(CHECK)
async def check(request: web.Request) -> web.Response:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[keys.SETTINGS].max_body_bytes
        return json_error(413, f"request body too large: a check takes at most {limit} bytes")
    data = json.loads(body) if body else None
    if isinstance(data, dict) and data.get("lang") is None:
        data = {**data, "lang": negotiate(request.headers.get("Accept-Language"))}
    draft = CheckRequest.model_validate(data)
    compiled = request.app[keys.POLICY].current
    if draft.platform is not None and draft.platform not in compiled.loaded.policy.platforms:
        return json_error(
            422,
            "invalid request: platform",
            details=[{"field": "platform", "message": f"unknown platform {draft.platform!r}"}],
        )
    result = compiled.engine.check(draft, compiled.version)
    return web.json_response(result.model_dump(mode="json"))


@routes.get(SUMMARY)
async def summary(request: web.Request) -> web.Response:
    """The rules in force, their severities and guideline clauses, in the asked language."""
    lang = request.query.get("lang") or negotiate(request.headers.get("Accept-Language"))
    compiled = request.app[keys.POLICY].current
    policy = compiled.loaded.policy
    rules = []
    for rule_id in RULE_IDS:
        rule = policy.compliance.rules.get(rule_id)  # type: ignore[call-overload]
        if rule is None:
            continue
        guideline = policy.guidelines.get(rule.guideline or "")
        rules.append({
            "rule": rule_id,
            "severity": {"official": rule.severity.official.value,
                         "personal": rule.severity.personal.value},
            "message": rule.message.get(lang),
            "guideline": {"title": guideline.title.get(lang), "text": guideline.text.get(lang)}
            if guideline else None,
        })
    return web.json_response({"policy": compiled.version, "lang": lang, "rules": rules})


async def _preflight(request: web.Request) -> web.Response:
    headers = {
        "Access-Control-Allow-Methods": f"{'POST' if request.path == CHECK else 'GET'}, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Accept-Language",
        "Access-Control-Max-Age": "600",
    }
    if request.headers.get("Access-Control-Request-Private-Network") == "true":
        # Chrome's private network access: public pages calling a service on the LAN.
        headers["Access-Control-Allow-Private-Network"] = "true"
    return web.Response(status=204, headers=headers)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    if request.path in _CORS_PATHS:
        response.headers["Access-Control-Allow-Origin"] = "*"


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.router.add_route("OPTIONS", CHECK, _preflight)
    app.router.add_route("OPTIONS", SUMMARY, _preflight)
    app.on_response_prepare.append(_cors)

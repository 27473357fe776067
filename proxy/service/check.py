"""``POST /api/v1/check`` (the contract in DESIGN.md) and ``GET /api/v1/policy/summary``.

Page scripts of any origin call these (the content script runs on the platforms' pages):
both answer CORS preflights and carry ``Access-Control-Allow-Origin: *``; no credentials
are involved. Bodies larger than ``max_body_bytes`` get 413, invalid fields 422 naming the
field (``errors.answer``, called by ``pipeline.py``). The draft text is never stored or
logged.

The check is on the hot path (every pause in typing): the body is validated straight from
bytes (``model_validate_json``), the answer serialized by pydantic-core
(``model_dump_json``), and the result counted for ``/metrics`` from the object (never by
parsing the answer again).
"""

from __future__ import annotations

import functools
import json

from aiohttp import web
from pydantic import ValidationError

from proxy.compliance.config import RULE_IDS
from proxy.compliance.model import CheckRequest, CheckResult
from proxy.i18n import negotiate
from proxy.service import cors, keys
from proxy.service.errors import json_error
from proxy.service.metrics import METRICS

CHECK = "/api/v1/check"
SUMMARY = "/api/v1/policy/summary"
_JSON = {"Content-Type": "application/json; charset=utf-8"}

routes = web.RouteTableDef()


@routes.post(CHECK)
async def check(request: web.Request) -> web.Response:
    app = request.app
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = app[keys.SETTINGS].max_body_bytes
        return json_error(413, f"request body too large: a check takes at most {limit} bytes")
    draft = _draft(body)
    if draft.lang is None:
        lang = negotiate(request.headers.get("Accept-Language"))
        draft = draft.model_copy(update={"lang": lang})  # a valid value: no re-validation
    compiled = app[keys.POLICY].current
    if draft.platform is not None and draft.platform not in compiled.loaded.policy.platforms:
        return json_error(
            422,
            "invalid request: platform",
            details=[{"field": "platform", "message": f"unknown platform {draft.platform!r}"}],
        )
    result = compiled.engine.check(draft, compiled.version)
    app[METRICS].observe_check(result)
    # bytes (a str body takes aiohttp's slower payload path); the header as one string
    body = _clean_body(result.policy) if not result.findings else _body(result)
    return web.Response(body=body, headers=_JSON)


def _body(result: CheckResult) -> bytes:
    return result.model_dump_json().encode()


@functools.lru_cache(maxsize=16)
def _clean_body(policy_version: str) -> bytes:
    """The answer to most checks (no findings), serialized once per policy version."""
    return _body(CheckResult(verdict="ok", policy=policy_version, findings=[]))


def _draft(body: bytes) -> CheckRequest:
    """The request validated from the body's bytes.

    Where pydantic's parser refuses the bytes, ``json.loads`` gets the last word: a body
    that is not JSON (or not UTF-8) raises what it raises (400 from the error middleware,
    with the position), one it accepts (a UTF-8 BOM) is validated from its result."""
    try:
        return CheckRequest.model_validate_json(body or b"null")
    except ValidationError as exc:
        if not any(e["type"] == "json_invalid" for e in exc.errors()):
            raise
    return CheckRequest.model_validate(json.loads(body))


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


_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*"}


def _any_origin(request: web.Request) -> dict[str, str]:
    return _ANY_ORIGIN


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.router.add_route("OPTIONS", CHECK, _preflight)
    app.router.add_route("OPTIONS", SUMMARY, _preflight)
    cors.allow(app, (CHECK, SUMMARY), _any_origin)

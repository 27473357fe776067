"""``POST /api/v1/check`` (the contract in DESIGN.md) and ``GET /api/v1/policy/summary``.

Who may call them from a browser (issue 12): the check takes only
``Content-Type: application/json`` (anything else, none included, gets 415 before the body
is read), so every cross-site call is preflighted; the preflight, and the answers, name
only the origins that need them (``allowed_origin``): the catalog platforms' pages over
https (the content script runs there), the configured extension origins, and
``Settings.check_origins``. Never ``*``: a page elsewhere on the web cannot make a staff
member's browser spend the service's CPU. The gateway's reserved ``/__sargs/`` path is
same-origin with the platform page and needs no CORS at all.

Bodies larger than ``max_body_bytes`` get 413, invalid fields 422 naming the field
(``errors.answer``, called by ``pipeline.py``). The draft text is never stored or logged.

The engine runs in a worker process (``proxy/checkpool.py``), never on the event loop,
under a CPU budget (``Settings.check_seconds``): a check past it, or one that finds every
worker busy, is answered 503 with the reason and ``Retry-After``.

The check is on the hot path (every pause in typing): the body is validated straight from
bytes (``model_validate_json``), the answer serialized by pydantic-core
(``model_dump_json``), and the result counted for ``/metrics`` from the object (never by
parsing the answer again).
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import ValidationError

from proxy.checkpool import CheckPool, CheckTimeout, CheckUnavailable
from proxy.compliance.config import RULE_IDS
from proxy.compliance.model import CheckRequest, CheckResult
from proxy.i18n import negotiate
from proxy.service import cors, keys, me
from proxy.service.errors import json_error
from proxy.service.metrics import METRICS

CHECK = "/api/v1/check"
SUMMARY = "/api/v1/policy/summary"
_JSON = {"Content-Type": "application/json; charset=utf-8"}

CHECKPOOL = web.AppKey("sargs.checkpool", CheckPool)

routes = web.RouteTableDef()


@routes.post(CHECK)
async def check(request: web.Request) -> web.Response:
    app = request.app
    refused = _not_json(request)
    if refused is not None:
        return refused
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
    try:
        result = await app[CHECKPOOL].check(draft)  # off the event loop, under a budget
    except (CheckTimeout, CheckUnavailable) as exc:
        response = json_error(503, str(exc))
        response.headers["Retry-After"] = "1"
        return response
    app[METRICS].observe_check(result)
    # bytes (a str body takes aiohttp's slower payload path); the header as one string
    body = _clean_body(result.policy) if not result.findings else _body(result)
    return web.Response(body=body, headers=_JSON)


def _not_json(request: web.Request) -> web.Response | None:
    """415 unless the body is declared JSON in UTF-8 (the only kind a page cannot send
    cross-site without a preflight)."""
    charset = (request.charset or "utf-8").lower()
    if request.content_type == "application/json" and charset in ("utf-8", "utf8"):
        return None
    given = request.headers.get("Content-Type", "")
    return json_error(415, "unsupported content type: the check takes application/json "
                      f"(UTF-8); got {given[:60]!r}" if given else
                      "unsupported content type: the check takes application/json (UTF-8); "
                      "the request had no Content-Type")


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


def allowed_origin(request: web.Request, origin: str) -> bool:
    """Whether a page or extension at ``origin`` may call the check and the summary.

    The catalog's platform pages over https (a catalog domain or one of its subdomains,
    default port), the extension origins ``me.allowed_origin`` accepts, and the exact
    origins listed in ``Settings.check_origins``."""
    settings = request.app[keys.SETTINGS]
    if origin in settings.check_origins:
        return True
    if me.allowed_origin(origin, settings.extension_origins):
        return True
    scheme, sep, host = origin.partition("://")
    if scheme != "https" or not sep or not host or host != host.lower():
        return False
    if not all(label and label.isascii() and label.replace("-", "").isalnum()
               for label in host.split(".")):
        return False  # a port, a path, userinfo, an IP literal's brackets: not a page origin
    domains = {d for p in request.app[keys.POLICY].current.loaded.policy.platforms.values()
               for d in p.domains}
    labels = host.split(".")
    return any(".".join(labels[i:]) in domains for i in range(len(labels)))


def _cors_headers(request: web.Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if origin is None or not allowed_origin(request, origin):
        return _VARY
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


_VARY = {"Vary": "Origin"}


async def _preflight(request: web.Request) -> web.Response:
    if "Access-Control-Allow-Origin" not in _cors_headers(request):
        return json_error(403, "origin not allowed to call this API")
    headers = {
        "Access-Control-Allow-Methods": f"{'POST' if request.path == CHECK else 'GET'}, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Accept-Language",
        "Access-Control-Max-Age": "600",
    }
    if request.headers.get("Access-Control-Request-Private-Network") == "true":
        # Chrome's private network access: public pages calling a service on the LAN.
        headers["Access-Control-Allow-Private-Network"] = "true"
    return web.Response(status=204, headers=headers)


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    pool = CheckPool(lambda: app[keys.POLICY].current, budget=settings.check_seconds)
    app[CHECKPOOL] = pool  # its workers start at the first check (`sargs run`: at start)
    yield
    await pool.close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_pool_ctx)
    app.add_routes(routes)
    app.router.add_route("OPTIONS", CHECK, _preflight)
    app.router.add_route("OPTIONS", SUMMARY, _preflight)
    cors.allow(app, (CHECK, SUMMARY), _cors_headers)

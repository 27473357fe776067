"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of every ``/api/`` endpoint.

Operations are described here, in one table (``OPERATIONS``), with pydantic models for
bodies and answers where the endpoint has them. The document lists the operations of the
routes the running app really has; ``tests/service/test_openapi.py`` fails when a route
under ``/api/`` has no entry here (or an entry has no route), so the two stay true.
A new endpoint: add its ``Op`` (or call ``document()`` from its module's ``setup``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from proxy.compliance.model import CheckRequest, CheckResult
from proxy.service import keys
from proxy.service.access import ExceptionCreated, ExceptionIn, ExceptionList, ExceptionOut
from proxy.service.approve import ApproveIn, GrantList, GrantOut, RejectIn, RevokeIn
from proxy.service.bundle import EventBatch

PATH = "/api/v1/openapi.json"
Security = Literal["user", "approver", "gateway", "none"]


class Error(BaseModel):
    """Every error answer: a message, and for 422 the fields at fault."""

    error: str
    message: str | None = Field(
        default=None, description="What to tell the user, in their language (where an "
        "endpoint has it: POST /api/v1/proceed).")
    details: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "path", "header"] = "query"
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    security: Security = "user"
    body: type[BaseModel] | None = None
    ok: int = 200
    answer: type[BaseModel] | None = None
    answer_type: str = "application/json"
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""


_ID = Param("id", "path", required=True)
_LANG = Param("lang", schema={"type": "string", "enum": ["en", "lv", "sv", "sq"]},
              description="Language; default: Accept-Language.")
_PREFLIGHT = Op(
    "CORS preflight", "check", security="none", ok=204, errors=(403,),
    description="Only the catalog platforms' https origins, the extension origins and "
                "SARGS_CHECK_ORIGINS get 204 (never Access-Control-Allow-Origin: *).")
_EXTENSION_PREFLIGHT = Op(
    "CORS preflight of the browser extension", "me", security="none", ok=204, errors=(403,),
    description="Only extension origins (chrome-extension://, moz-extension://, "
                "safari-web-extension://; SARGS_EXTENSION_ORIGINS when set) get 204.")

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", PATH): Op("This document", "meta", security="none"),
    ("POST", "/api/v1/check"): Op(
        "Check a draft against the code of conduct", "check", security="none",
        body=CheckRequest, answer=CheckResult, errors=(400, 413, 415, 422, 503),
        description="Offsets count UTF-16 code units. The draft is never stored. Only "
                    "application/json (UTF-8) is taken (415 otherwise); 503 when the check "
                    "exceeds its CPU budget or every check worker is busy."),
    ("OPTIONS", "/api/v1/check"): _PREFLIGHT,
    ("GET", "/api/v1/policy/summary"): Op(
        "The compliance rules in force", "check", security="none", params=(_LANG,)),
    ("OPTIONS", "/api/v1/policy/summary"): _PREFLIGHT,
    ("GET", "/api/v1/me"): Op(
        "Who I am and what each platform allows me now", "me", errors=(401,)),
    ("OPTIONS", "/api/v1/me"): _EXTENSION_PREFLIGHT,
    ("GET", "/api/v1/guidelines"): Op("The guidelines in one language", "me",
                                      security="none", params=(_LANG,)),
    ("OPTIONS", "/api/v1/guidelines"): _EXTENSION_PREFLIGHT,
    ("GET", "/api/v1/bundle"): Op(
        "The versioned bundle gateways enforce (policy version and active grants)",
        "gateways", security="gateway", errors=(401, 503),
        params=(Param("If-None-Match", "header"),)),
    ("GET", "/api/v1/bundle/events"): Op(
        "Bundle versions as they change: server-sent events, or a long-poll with ?after=",
        "gateways", security="gateway", answer_type="text/event-stream", errors=(401, 422, 503),
        params=(Param("after", schema={"type": "integer", "minimum": 0}),
                Param("wait", schema={"type": "number", "minimum": 0, "maximum": 60}))),
    ("POST", "/api/v1/events"): Op(
        "Deliver a gateway's decision events (idempotent per event id)", "gateways",
        security="gateway", body=EventBatch, errors=(400, 401, 413, 422, 503)),
    ("POST", "/api/v1/exceptions"): Op(
        "Request temporary access", "access", body=ExceptionIn, ok=201,
        answer=ExceptionCreated, errors=(400, 401, 403, 422, 503),
        description="201 only once the request is stored. Browsers post the form "
                    "(application/x-www-form-urlencoded with a csrf field); a JSON client "
                    "with a session cookie sends X-CSRF-Token."),
    ("GET", "/api/v1/exceptions"): Op(
        "Requests an approver may decide (pending), or all of one status", "approvals",
        security="approver", answer=ExceptionList, errors=(401, 403, 422),
        params=(Param("status", schema={"type": "string", "enum": [
            "pending", "approved", "rejected", "expired", "revoked", "lapsed"]}),)),
    ("GET", "/api/v1/exceptions/mine"): Op("My requests", "access", answer=ExceptionList,
                                           errors=(401,)),
    ("GET", "/api/v1/exceptions/{id}"): Op(
        "One request (its requester, or an approver who may decide it)", "access",
        answer=ExceptionOut, params=(_ID,), errors=(401, 404)),
    ("POST", "/api/v1/exceptions/{id}/approve"): Op(
        "Approve: access starts now, for at most the requester's cap", "approvals",
        security="approver", body=ApproveIn, answer=ExceptionOut, params=(_ID,),
        errors=(400, 401, 403, 404, 409, 422, 503)),
    ("POST", "/api/v1/exceptions/{id}/reject"): Op(
        "Reject with a reason", "approvals", security="approver", body=RejectIn,
        answer=ExceptionOut, params=(_ID,), errors=(400, 401, 403, 404, 409, 422, 503)),
    ("GET", "/api/v1/grants"): Op("Grants in force", "approvals", security="approver",
                                  answer=GrantList, errors=(401, 403)),
    ("POST", "/api/v1/grants/{id}/revoke"): Op(
        "End a grant now", "approvals", security="approver", body=RevokeIn,
        answer=GrantOut, params=(_ID,), errors=(400, 401, 403, 404, 409, 422, 503)),
}

_SECURITY: dict[Security, list[dict[str, list[str]]]] = {
    "user": [{"basic": []}, {"session": []}],
    "approver": [{"basic": []}, {"session": []}],
    "gateway": [{"gateway": []}],
    "none": [],
}
_STATUS_TEXT = {200: "OK", 201: "Created", 204: "No content", 400: "Malformed body",
                401: "Log in first", 403: "Not allowed", 404: "Not found",
                409: "Already decided", 413: "Body too large",
                415: "Not application/json", 429: "Too many (wait, or use what you have)",
                422: "Invalid input (details name the fields)",
                503: "Unavailable (the store; a check: over its budget or busy)"}


def document(method: str, path: str, op: Op) -> None:
    """Describe an endpoint from another module."""
    OPERATIONS[method.upper(), path] = op


def api_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route under /api/ (HEAD, added for GETs, left out)."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path and path.startswith("/api/") and route.method not in ("HEAD", "*"):
            found.add((route.method, path))
    return found


def build(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document for the routes ``app`` has (documented ones)."""
    present = sorted(api_routes(app) & set(OPERATIONS))
    models = {m for key in present for m in (OPERATIONS[key].body, OPERATIONS[key].answer)
              if m is not None} | {Error}
    refs, defs = models_json_schema(
        [(m, "validation" if m in {o.body for o in OPERATIONS.values()} else "serialization")
         for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}")
    schema_of = {m: refs[(m, mode)] for (m, mode) in refs}
    paths: dict[str, dict[str, Any]] = {}
    for method, path in present:
        op = OPERATIONS[method, path]
        entry: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                                 "operationId": f"{method.lower()}{_op_name(path)}",
                                 "security": _SECURITY[op.security]}
        if op.description:
            entry["description"] = op.description
        if op.params:
            entry["parameters"] = [
                {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                 "schema": p.schema, **({"description": p.description} if p.description
                                        else {})} for p in op.params]
        if op.body is not None:
            entry["requestBody"] = {"required": method == "POST" and op.body not in (
                ApproveIn, RevokeIn), "content": {"application/json": {
                    "schema": schema_of[op.body]}}}
        ok: dict[str, Any] = {"description": _STATUS_TEXT.get(op.ok, "OK")}
        if op.answer is not None:
            ok["content"] = {op.answer_type: {"schema": schema_of[op.answer]}}
        elif op.ok != 204:
            ok["content"] = {op.answer_type: {"schema": {}}}
        responses: dict[str, Any] = {str(op.ok): ok}
        for status in op.errors:
            responses[str(status)] = {"description": _STATUS_TEXT[status], "content": {
                "application/json": {"schema": schema_of[Error]}}}
        entry["responses"] = responses
        paths.setdefault(path, {})[method.lower()] = entry
    settings = app[keys.SETTINGS]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sargs service API", "version": "1",
                 "description": "Social-media compliance gateway: checks, temporary access, "
                                "approvals, the gateways' grant bundle. See docs/api.md."},
        "servers": [{"url": settings.public_service_url}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic",
                          "description": "The user's Sargs name and password."},
                "session": {"type": "apiKey", "in": "cookie", "name": "sargs_session",
                            "description": "After logging in at /login; unsafe requests "
                                           "also need X-CSRF-Token."},
                "gateway": {"type": "http", "scheme": "bearer",
                            "description": "SARGS_GATEWAY_TOKEN, else the token generated "
                                           "into VAR_DIR/gateway.token; every address, "
                                           "loopback included."},
            },
        },
    }


def _op_name(path: str) -> str:
    parts = [p.strip("{}") for p in path.removeprefix("/api/v1/").replace(".", "/").split("/")]
    return "".join(p[:1].upper() + p[1:].replace("-", "") for p in parts if p)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build(request.app))


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, openapi_json)

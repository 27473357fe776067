"""Domain errors turned into HTTP answers (``answer``, called by ``pipeline.py`` for
whatever a handler raises): 4xx name the field, never 5xx for bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy
from pydantic import ValidationError

from proxy.service.keys import SETTINGS

log = logging.getLogger("sargs.service")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wants_html(request: web.Request) -> bool:
    """The caller is a browser asking for a page (not a script or an API client)."""
    return "text/html" in request.headers.get("Accept", "")


async def read_form(request: web.Request
                    ) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The request's form; a body that cannot be read as one (no multipart boundary, an
    unknown charset, bytes that are not text) is the client's error: 400, not 500."""
    try:
        return await request.post()
    except (ValueError, LookupError) as exc:  # UnicodeDecodeError is a ValueError
        raise web.HTTPBadRequest(text=json.dumps({"error": f"unreadable form: {exc}"}),
                                 content_type="application/json") from None


def json_error(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(body)",
            "message": str(err["msg"]).removeprefix("Value error, "),
        }
        for err in exc.errors()
    ]


FORM_ERRORS = {
    "missing": "form_missing", "string_too_short": "form_too_short",
    "string_too_long": "form_too_long", "greater_than_equal": "form_at_least",
    "greater_than": "form_at_least", "less_than_equal": "form_at_most",
    "less_than": "form_at_most", "int_parsing": "form_number", "int_type": "form_number",
    "int_from_float": "form_number", "literal_error": "form_choice", "enum": "form_choice",
}
"""Pydantic's error types → texts of the ``service`` domain (others: ``form_invalid``)."""


def form_errors(exc: ValidationError, t: Callable[..., str],
                amount: Callable[[str, Any], str] = lambda field, value: str(value)
                ) -> dict[str, str]:
    """Field → what is wrong with it, in the reader's language (``t``), for the HTML
    forms; the API answers keep pydantic's English. ``amount(field, limit)`` writes a
    limit the way the form asks for it (minutes as a duration, say)."""
    found: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        limits = dict.fromkeys(("ge", "gt", "le", "lt", "min_length", "max_length"), "")
        limits.update({k: amount(field, v) for k, v in (err.get("ctx") or {}).items()})
        key = FORM_ERRORS.get(err["type"], "form_invalid")
        if key == "form_too_short" and (err.get("ctx") or {}).get("min_length") == 1:
            key = "form_missing"  # an empty required field
        found.setdefault(field, t(key, **limits))
    return found


def answer(request: web.Request, exc: Exception) -> web.Response | None:
    """The answer for a domain error a handler raised, or None (not one of ours)."""
    if isinstance(exc, ValidationError):
        details = validation_details(exc)
        fields = ", ".join(d["field"] for d in details)
        return json_error(422, f"invalid request: {fields}", details=details)
    if isinstance(exc, json.JSONDecodeError):
        return json_error(400, f"body is not valid JSON: {exc.msg} at position {exc.pos}")
    if isinstance(exc, UnicodeDecodeError):
        return json_error(400, "body is not valid UTF-8")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = request.app[SETTINGS].max_body_bytes
        return json_error(413, f"request body too large: at most {limit} bytes")
    return None

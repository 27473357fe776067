"""Server-rendered pages of the service: one autoescaped Jinja2 environment, localized texts.

Templates live in ``proxy/service/templates/``; their texts in ``proxy/locales/service.yaml``
(en, lv, sv, sq). Every page gets ``t`` (the translator), ``lang``, ``csrf`` (the token its
forms send back), ``user`` (when known) and ``badge`` (pending requests an approver may
decide, when the handler counted them).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from proxy.i18n import LANGUAGES, Translator, negotiate
from proxy.service import keys
from proxy.service.auth import USER
from proxy.service.csrf import csrf_token

DOMAIN = "service"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def language(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    return negotiate(request.headers.get("Accept-Language"))


def local_time(request: web.Request, value: datetime | None) -> str:
    """A time in the institution's time zone, ``2026-11-23 10:00``."""
    if value is None:
        return ""
    tz = ZoneInfo(request.app[keys.POLICY].current.loaded.policy.institution.timezone)
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def render(request: web.Request, template: str, *, status: int = 200,
           **context: Any) -> web.Response:
    lang = language(request)
    user = request.get(USER)
    values: dict[str, Any] = {
        "t": Translator(DOMAIN, lang),
        "lang": lang,
        "csrf": csrf_token(request),
        "user": user,
        "badge": None,
        "when": lambda v: local_time(request, v),
        "policy_name": request.app[keys.POLICY].current.loaded.policy.institution.name,
    }
    values.update(context)
    body = environment().get_template(template).render(**values)
    response = web.Response(text=body, status=status, content_type="text/html",
                            charset="utf-8")
    response.headers["Content-Language"] = lang
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    return response

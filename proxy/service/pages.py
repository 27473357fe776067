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
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from proxy.i18n import LANGUAGES, Translator, negotiate
from proxy.service import keys, localize
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


LANG_COOKIE = "sargs_lang"
LANGUAGE_NAMES = {"en": "English", "lv": "Latviešu", "sv": "Svenska", "sq": "Shqip"}
"""Each language in its own words, for the language switch."""


def language(request: web.Request) -> str:
    """``?lang=`` (the switch), else the switch's cookie, else Accept-Language."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    kept = request.cookies.get(LANG_COOKIE, "")
    if kept in LANGUAGES:
        return kept
    return negotiate(request.headers.get("Accept-Language"))


def reader_zone(request: web.Request) -> ZoneInfo:
    policy = request.app[keys.POLICY].current.loaded.policy
    return localize.zone(request.cookies.get(localize.TZ_COOKIE), policy.institution.timezone)


def local_time(request: web.Request, value: datetime | None) -> str:
    """A time in the reader's language and time zone, ``3 Dec 2026, 10:00``."""
    return localize.when(value, language(request), reader_zone(request))


def switch_url(request: web.Request, lang: str) -> str:
    """This page in another language. The links keep the other query values except the
    addresses (``next``, ``url``): those are checked where they are used, and a page
    never repeats an address it was given unchecked (tests/security)."""
    query = {k: v for k, v in request.query.items() if k not in ("lang", "next", "url")}
    query["lang"] = lang
    return request.path + "?" + urlencode(query)


def render(request: web.Request, template: str, *, status: int = 200,
           **context: Any) -> web.Response:
    lang = language(request)
    user = request.get(USER)
    policy = request.app[keys.POLICY].current.loaded.policy
    zone = reader_zone(request)
    values: dict[str, Any] = {
        "t": Translator(DOMAIN, lang),
        "lang": lang,
        "csrf": csrf_token(request),
        "user": user,
        "badge": None,
        "when": lambda v: localize.when(v, lang, zone),
        "duration": lambda minutes: localize.duration(minutes, lang),
        "rule_name": lambda rule: localize.rule_name(policy, rule, lang),
        "role_name": lambda role: localize.role_name(policy, role, lang),
        "platform_name": lambda p: localize.platform_name(policy, p),
        "browser_of": localize.browser_of,
        "lang_switch": [(code, LANGUAGE_NAMES[code], switch_url(request, code))
                      for code in LANGUAGES],
        "policy_name": policy.institution.name,
    }
    values.update(context)
    body = environment().get_template(template).render(**values)
    response = web.Response(text=body, status=status, content_type="text/html",
                            charset="utf-8")
    response.headers["Content-Language"] = lang
    if request.query.get("lang") in LANGUAGES and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, path="/",
                            httponly=True, samesite="Strict", secure=request.secure)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    return response

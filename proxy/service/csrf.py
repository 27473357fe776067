"""CSRF tokens and Origin checks for the service's pages and credentialed API calls.

* **CSRF**: every form POST carries a ``csrf`` field (JSON clients with a session send an
  ``X-CSRF-Token`` header) equal to HMAC(secret, session id), compared with
  ``secrets.compare_digest``. Before login, the token is bound to a random ``sargs_pre``
  cookie instead.
* **Origin**: an unsafe request (POST, PUT, PATCH, DELETE) to a page, or to the API with
  credentials (a session cookie or ``Authorization: Basic``), is refused (403) when its
  ``Origin`` (or, without one, ``Referer``) is another site's. Credential-less API calls
  (``/api/v1/check`` from the content script, gateways with a bearer token) are not
  affected.
"""

from __future__ import annotations

import json
import logging
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from proxy.service import keys
from proxy.service.auth import AUTH, SESSION_COOKIE, session_of, set_cookie
from proxy.service.errors import json_error

log = logging.getLogger("sargs.service.csrf")

PRE_COOKIE = "sargs_pre"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token(request: web.Request) -> str:
    """The token forms on this page must send back (session-bound, or pre-login)."""
    auth = request.app[AUTH]
    session = session_of(request)
    if session is not None:
        return auth.csrf_for(session)
    pre = request.get(_PRE_NEW) or request.cookies.get(PRE_COOKIE)
    if not pre:
        pre = secrets.token_urlsafe(18)
        request[_PRE_NEW] = pre
    return auth.csrf_for("pre:" + str(pre))


_PRE_NEW = web.RequestKey("sargs.pre", str)


async def check_csrf(request: web.Request, given: str | None) -> None:
    """Refuse (403) unless ``given`` is this session's (or pre-login cookie's) token."""
    auth = request.app[AUTH]
    session = session_of(request)
    if session is not None:
        expected = auth.csrf_for(session)
    else:
        pre = request.cookies.get(PRE_COOKIE)
        expected = auth.csrf_for("pre:" + pre) if pre else ""
    if not given or not expected or not secrets.compare_digest(given, expected):
        raise _forbidden(request, "the form's security token is missing or wrong; reload the "
                                  "page and try again")


def _forbidden(request: web.Request, message: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=json.dumps({"error": message}),
                             content_type="application/json")


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[" and the like: nobody's origin
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origins(request: web.Request) -> set[str]:
    settings = request.app[keys.SETTINGS]
    found = {f"{request.scheme}://{request.host}".lower()}
    public = _origin_of(settings.public_service_url)
    if public:
        found.add(public)
    return found


def cross_origin(request: web.Request) -> str | None:
    """The foreign origin of an unsafe request, or ``None`` when it is ours or unknown."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return None
        origin = _origin_of(referer) or "null"
    origin = origin.strip().lower()
    return None if origin in own_origins(request) else origin


def _carries_credentials(request: web.Request) -> bool:
    headers = request.headers
    return ("Cookie" in headers and SESSION_COOKIE in request.cookies) or headers.get(
        "Authorization", "").lower().startswith("basic ")


def cross_site_refusal(request: web.Request) -> web.Response | None:
    """403 for an unsafe request from another site, before any handler runs.

    The API takes them when they carry no credentials (the check is called from every
    platform's pages)."""
    if request.method in UNSAFE and (
        not request.path.startswith("/api/") or _carries_credentials(request)
    ):
        foreign = cross_origin(request)
        if foreign is not None:
            log.warning("refused %s %s from origin %s", request.method, request.path, foreign)
            return json_error(403, f"cross-site request refused (origin {foreign})")
    return None


def after(request: web.Request, response: web.StreamResponse) -> None:
    """A page that started a pre-login session (``csrf_token``) sets its cookie.

    API handlers render no pages, so they never start one: their answers are left
    as they are (the check is on the hot path)."""
    if request.path.startswith("/api/"):
        return
    pre = request.get(_PRE_NEW)
    if pre and not response.prepared:
        set_cookie(request, response, PRE_COOKIE, str(pre), max_age=3600)



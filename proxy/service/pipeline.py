"""Every request's way through the service, in one middleware.

Four concerns wrap every handler, each a plain function in its own module:

1. the latency metric, by route pattern and final status (``metrics.py``);
2. CORS headers on the paths page scripts and extensions call, errors included
   (``cors.py``);
3. refusal of unsafe requests from other sites, and the pre-login cookie a page may
   have started (``csrf.py``); ``/metrics`` without its token (``metricsauth.py``);
   ``Strict-Transport-Security`` on every answer when served over https;
4. answers for domain errors: 422 naming the field, 400 for a body that is not JSON,
   413 for one too large (``errors.py``); 403 and 404 as a page in the reader's
   language when a browser asks for one (``error_page``).

They run in one layer because every aiohttp middleware and response-signal receiver
is a coroutine (and a ``partial``) per request: as three middlewares and a signal they
cost the check API, the service's hot path, as much as the rules engine does on a
typical post.
"""

from __future__ import annotations

import contextlib
import time

from aiohttp import web

from proxy.service import cors, csrf, errors, metrics, metricsauth
from proxy.service.auth import SESSION_COOKIE, USER, current_user, is_https
from proxy.service.errors import Handler
from proxy.service.pages import render

HSTS = "max-age=31536000"
"""Browsers that reached the service over https keep to https for a year."""


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    allow = cors.headers(request)
    try:
        response: web.StreamResponse | None = (
            csrf.cross_site_refusal(request) or metricsauth.refusal(request))
        if response is None:
            try:
                response = await handler(request)
            except Exception as exc:
                response = errors.answer(request, exc)
                if response is None:
                    raise
            else:
                csrf.after(request, response)
        status = response.status
        if allow:
            response.headers.update(allow)
        if is_https(request):
            response.headers["Strict-Transport-Security"] = HSTS
        return response
    except web.HTTPException as exc:  # redirects, 401, 404, 405: aiohttp answers them
        status = exc.status
        page = await error_page(request, exc)
        if page is not None:  # a browser asking for a page gets one, in its language
            if is_https(request):
                page.headers["Strict-Transport-Security"] = HSTS
            return page
        if allow:
            exc.headers.update(allow)
        if is_https(request):
            exc.headers["Strict-Transport-Security"] = HSTS
        raise
    finally:
        metrics.observe(request, status, time.perf_counter() - started)


async def error_page(request: web.Request, exc: web.HTTPException) -> web.Response | None:
    """403 and 404 as an HTML page in the reader's language, for a browser's GET (with the
    navigation of the user its session cookie names, if any)."""
    if exc.status not in (403, 404) or request.method not in ("GET", "HEAD"):
        return None
    if not errors.wants_html(request):
        return None
    if USER not in request and SESSION_COOKIE in request.cookies:
        with contextlib.suppress(web.HTTPException):
            await current_user(request)
    return render(request, "error.html", status=exc.status, code=exc.status)


def setup(app: web.Application) -> None:
    app.middlewares.append(pipeline)

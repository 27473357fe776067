"""CORS headers on every answer of the paths that page scripts and extensions call.

Each part registers its paths with a function that gives the headers for a request
(``allow``); one ``on_response_prepare`` receiver adds them to every answer on those
paths, errors included (a 422 from the error middleware, a 401, a 405 from the router),
so the calling page can read them. A signal, not a middleware: other routes pay one
dictionary lookup, and there is one receiver however many parts use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from aiohttp import web

Headers = Callable[[web.Request], Mapping[str, str]]

_PATHS = web.AppKey("sargs.cors", dict[str, Headers])


def allow(app: web.Application, paths: Iterable[str], headers: Headers) -> None:
    """Answers on ``paths`` (exact) carry ``headers(request)``."""
    if _PATHS not in app:
        app[_PATHS] = {}
        app.on_response_prepare.append(_add_headers)
    for path in paths:
        app[_PATHS][path] = headers


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = request.app[_PATHS].get(request.path)
    if headers is not None:
        response.headers.update(headers(request))

"""CORS headers on every answer of the paths that page scripts and extensions call.

Each part registers its paths with a function that gives the headers for a request
(``allow``); the service's one middleware (``pipeline.py``) adds them to every answer on
those paths, errors included (a 422 for a bad field, a 401, a 405 from the router), so
the calling page can read them. Other paths pay one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from aiohttp import web

Headers = Callable[[web.Request], Mapping[str, str]]

_PATHS = web.AppKey("sargs.cors", dict[str, Headers])


def allow(app: web.Application, paths: Iterable[str], headers: Headers) -> None:
    """Answers on ``paths`` (exact) carry ``headers(request)``."""
    app.setdefault(_PATHS, {}).update(dict.fromkeys(paths, headers))


def headers(request: web.Request) -> Mapping[str, str] | None:
    """The CORS headers the answer to ``request`` carries (None: not a CORS path)."""
    found = request.app.get(_PATHS)
    allowed = found.get(request.path) if found else None
    return allowed(request) if allowed is not None else None

"""Who may read the service's ``/metrics``: a Prometheus server with the metrics token.

The page holds counts that are nobody else's business (pending requests, active grants,
findings by rule), and it is served on the same port as the staff pages. So it asks for
``Authorization: Bearer <token>``: ``Settings.metrics_token``, else ``VAR_DIR/metrics.token``
(generated at first run, mode 0600). In Prometheus::

    authorization:
      type: Bearer
      credentials_file: /var/lib/sargs/metrics.token

Anything else gets a short 401 JSON (no ``WWW-Authenticate: Basic``: no login box).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from aiohttp import web

from proxy.secretfile import read_or_create
from proxy.service import keys
from proxy.service.errors import json_error
from proxy.settings import Settings

PATH = "/metrics"


def load_token(settings: Settings) -> str:
    configured = settings.metrics_token.get_secret_value()
    if configured:
        return configured
    return read_or_create(Path(settings.var_dir) / "metrics.token", "metrics token", 16)


class Token:
    """The token, read (or generated) at the first scrape: an app that is never scraped
    writes nothing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._value: str | None = None

    @property
    def value(self) -> str:
        if self._value is None:
            self._value = load_token(self.settings)
        return self._value


TOKEN = web.AppKey("sargs.metrics_token", Token)


def refusal(request: web.Request) -> web.Response | None:
    """401 for a ``/metrics`` request without the token; ``None`` otherwise."""
    if request.path != PATH:
        return None
    expected = request.app[TOKEN].value
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        return None
    return json_error(401, "the metrics need the metrics token (Authorization: Bearer; "
                           "see docs/deployment.md)")


def setup(app: web.Application) -> None:
    app[TOKEN] = Token(app[keys.SETTINGS])

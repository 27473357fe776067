"""The token gateways and service nodes share (``Authorization: Bearer``).

The service never trusts an address: every gateway endpoint (bundle, grant stream, events)
wants this token, loopback callers included. ``SARGS_GATEWAY_TOKEN`` sets it; when it is
empty, the token is generated once into ``VAR_DIR/gateway.token`` (mode 0600), as the
service's secret key is, so a single node (``sargs run``: gateway and service on one var
dir) works without configuration. Several nodes set the same ``SARGS_GATEWAY_TOKEN``
everywhere (or copy the file).
"""

from __future__ import annotations

from pathlib import Path

from proxy.secretfile import read_or_create
from proxy.settings import Settings

FILE = "gateway.token"
MIN_LENGTH = 32


def gateway_token(settings: Settings) -> str:
    """``settings.gateway_token``, else the one in ``VAR_DIR/gateway.token`` (made once)."""
    configured = settings.gateway_token.get_secret_value().strip()
    if configured:
        return configured
    return read_or_create(Path(settings.var_dir) / FILE, "gateway token", MIN_LENGTH)

"""The token gateways and service nodes share (``Authorization: Bearer``).

The service never trusts an address: every gateway endpoint (bundle, grant stream, events)
wants this token, loopback callers included. ``SARGS_GATEWAY_TOKEN`` sets it; when it is
empty, the token is generated once into ``VAR_DIR/gateway.token`` (mode 0600), as the
service's secret key is, so a single node (``sargs run``: gateway and service on one var
dir) works without configuration. Several nodes set the same ``SARGS_GATEWAY_TOKEN``
everywhere (or copy the file).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from proxy.settings import Settings

FILE = "gateway.token"
MIN_LENGTH = 32


def gateway_token(settings: Settings) -> str:
    """``settings.gateway_token``, else the one in ``VAR_DIR/gateway.token`` (made once)."""
    configured = settings.gateway_token.get_secret_value().strip()
    if configured:
        return configured
    return _read_or_create(Path(settings.var_dir) / FILE)


def _read_or_create(path: Path) -> str:
    """Written whole under a temporary name, then linked into place (``os.link`` fails when
    the file exists): a concurrent reader never sees a half-written token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            temporary.unlink()
    value = path.read_text().strip()
    if len(value) < MIN_LENGTH:
        raise RuntimeError(f"{path} holds no usable gateway token (delete it to make a new one)")
    return value

"""Directory identity: Negotiate (Kerberos) sign-on and LDAP / Active Directory groups as
roles. See docs/identity.md.

- ``negotiate``: the server side of ``Proxy-Authorization: Negotiate`` (pyspnego).
- ``ldap``: an account's groups (nested, primary), searched with ldap3.
- ``entries``: accounts, groups, DNs; whether an account is disabled or expired (pure).
- ``cache``: per-account TTL cache, single flight, fail-static when the directory is down.
- ``roles``: groups → Sargs roles from the policy's ``identity.directory_groups``.
- ``service``: the four put together for the gateway and the service pages.
"""

from __future__ import annotations

import logging
from typing import Any


def log_event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """One JSON log line with its facts as fields (``proxy/logs.py``)."""
    event = {"level": logging.getLevelName(level).lower(), "logger": logger.name,
             "message": message, **fields}
    logger.log(level, message, extra={"event": event})

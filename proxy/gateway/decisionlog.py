"""Decisions as JSON lines (logger ``sargs.decisions``).

One line per request to a catalog platform::

    {"ts": "2026-11-23T08:00:00.123456+00:00", "event": "decision", "user": "anna",
     "roles": ["staff"], "source": "basic", "platform": "x", "host": "x.com",
     "method": "GET", "path": "/home", "kind": "page", "action": "read",
     "allowed": true, "rule": "window", "reason": "...", "role": "staff",
     "grant": null, "policy": "2026.11-example+1a2b3c4d"}

Never request or response bodies, never query strings (they can carry draft text or
tokens): ``path`` is the URL path only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proxy.policy.decide import Decision, RequestKind, Subject

log = logging.getLogger("sargs.decisions")


class JsonFormatter(logging.Formatter):
    """A record's ``event`` dict as one JSON line; plain records as {ts, level, message}."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            data: dict[str, Any] = {
                "ts": datetime.fromtimestamp(record.created, UTC).isoformat(), **event
            }
        else:
            data = {
                "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(log_file: Path | None = None) -> logging.Handler:
    """Send decision lines to ``log_file`` (appended) or standard error."""
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def record(
    decision: Decision,
    subject: Subject,
    *,
    host: str,
    method: str,
    path: str,
    kind: RequestKind,
    policy: str,
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "decision",
        extra={
            "event": {
                "event": "decision",
                "user": subject.user,
                "roles": sorted(subject.roles),
                "source": subject.source,
                "platform": decision.platform,
                "host": host,
                "method": method,
                "path": path.split("?", 1)[0],
                "kind": str(kind),
                "action": str(decision.action),
                "allowed": decision.allowed,
                "rule": str(decision.rule),
                "reason": decision.reason,
                "role": decision.role,
                "grant": decision.grant,
                "policy": policy,
            }
        },
    )

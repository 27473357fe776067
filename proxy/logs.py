"""Logs as JSON lines, ready for a SIEM (one object per line, UTC timestamps).

``setup_logging(settings)`` sends every ``sargs.*`` logger's records to ``LOG_FILE``
(appended) or standard error as JSON, at ``LOG_LEVEL``. Records that carry an ``event``
dict (``log.info("decision", extra={"event": {...}})``, as the gateway's decision log
does) become that dict plus ``ts``; others become ``{ts, level, logger, message}`` (plus
``exception`` when there is one). Never log draft or post text.

The decision log (``proxy.gateway.decisionlog``, logger ``sargs.decisions``) keeps its own
handler with the same line format; both can share one file.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from proxy.settings import Settings

_HANDLER_FLAG = "_sargs_json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat()
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            data: dict[str, Any] = {"ts": ts, **event}
        else:
            data = {
                "ts": ts,
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(settings: Settings, logger: str = "sargs") -> logging.Handler:
    """Attach one JSON-lines handler to ``logger`` (idempotent: replaces an earlier one)."""
    target = logging.getLogger(logger)
    for old in [h for h in target.handlers if getattr(h, _HANDLER_FLAG, False)]:
        target.removeHandler(old)
        old.close()
    handler: logging.Handler
    if settings.log_file is not None:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(JsonFormatter())
    target.addHandler(handler)
    target.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    target.propagate = False  # not again as text through mitmproxy's terminal log
    return handler

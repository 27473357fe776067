"""Logs as JSON lines, ready for a SIEM (one object per line, UTC timestamps).

``setup_logging(settings)`` sends every ``sargs.*`` logger's records to ``LOG_FILE``
(appended) or standard error as JSON, at ``LOG_LEVEL``. Every line has ``ts``, ``level``,
``logger`` and ``message`` (a short, fixed sentence), and carries its facts as fields of
their own, never as text inside ``message``: each ``extra=`` key is a field, and an
``event`` dict is spread into the line::

    log.warning("post refused", extra={"event": {"event": "post-refused", "user": "anna",
                                                 "rules": ["personal-id"]}})
    {"ts": "...", "level": "warning", "logger": "sargs.posts", "message": "post refused",
     "event": "post-refused", "user": "anna", "rules": ["personal-id"]}

Exceptions add ``exception`` (the traceback). Never log draft or post text.

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
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}
"""Attributes every ``LogRecord`` has: the rest came from ``extra=``."""


def line_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON object of one record (see the module docs)."""
    data: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key in _STANDARD or key.startswith("_"):
            continue
        if key == "event" and isinstance(value, dict):
            for name, fact in value.items():
                data.setdefault(name, fact)
        else:
            data.setdefault(key, value)
    return data


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = line_fields(record)
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

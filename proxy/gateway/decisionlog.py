"""Decisions as JSON lines (logger ``sargs.decisions``), one per flow when it ends.

A mitmproxy add-on: at ``response`` (or ``error``) of every flow Sargs decided, it writes
one line from the flow record (:mod:`proxy.gateway.flowinfo`), so the line tells how the
flow really ended: a post the access policy allowed but the post check refused says
``"allowed": false`` with ``"refused"`` and the findings' rule ids::

    {"ts": "2026-11-23T08:00:00.123456+00:00", "level": "info",
     "logger": "sargs.decisions", "message": "decision", "event": "decision", "user": "anna",
     "roles": ["staff"], "source": "basic", "platform": "x", "host": "x.com",
     "method": "POST", "path": "/i/api/graphql/CreateTweet", "kind": "post",
     "action": "allow", "allowed": false, "rule": "role", "reason": "...",
     "role": "staff", "grant": null, "policy": "2026.11-example+1a2b3c4d",
     "status": 403, "refused": "content", "verdict": "block",
     "findings": [{"rule": "personal-id", "severity": "block"}]}

Never request or response bodies, never query strings (they can carry draft text or
tokens): ``path`` is the URL path only.

Each event is a dict, written with ``json.dumps``. ``configure()`` installs a
``LineHandler``, which writes the lines of one turn of the event loop with one ``write``
(a clean stop writes what is left; a process killed outright can lose at most the lines
of its last turn). Any other handler on the logger (a test's ``StreamHandler``, a SIEM
forwarder) gets ordinary ``LogRecord``s with the same ``event`` dict, formatted by
:class:`proxy.logs.JsonFormatter` into the same line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mitmproxy import http

from proxy.gateway.flowinfo import FlowInfo, peek
from proxy.logs import JsonFormatter

__all__ = ["DecisionLog", "JsonFormatter", "LineHandler", "configure", "event_of", "log"]

log = logging.getLogger("sargs.decisions")

FLUSH_BYTES = 64 * 1024
"""Buffered bytes that trigger a write at once."""
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
"""``json.dumps(..., ensure_ascii=False, default=str)`` without a new encoder per line."""


class LineHandler(logging.Handler):
    """Batched JSON-lines output: ``write_line`` on the fast path, ``emit`` for records.

    On an event loop's thread, lines are buffered and written together by one callback
    the loop runs as soon as the current callbacks are done (``call_soon``): under load
    one ``write`` carries the lines of a whole loop iteration. Anywhere else (a worker
    thread, a script) a line is written at once. Also written: at ``flush_bytes``, on
    ``flush()``/``close()`` (``logging.shutdown`` at exit), so a clean stop loses nothing.
    Lines reach the output whole and in order (one ``write`` per batch, under the lock).
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        close: Callable[[], None] | None = None,
        flush_bytes: int = FLUSH_BYTES,
    ) -> None:
        super().__init__()
        self._write = write
        self._close = close
        self.flush_bytes = flush_bytes
        self._lines: list[str] = []
        self._size = 0
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.setFormatter(JsonFormatter())

    @classmethod
    def to_file(cls, path: Path, **kwargs: Any) -> LineHandler:
        """Append to ``path``: one ``write(2)`` per batch (O_APPEND), so lines stay whole
        even when several processes share the file."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

        def write(data: str) -> None:
            raw = data.encode("utf-8")
            written = os.write(fd, raw)
            if written < len(raw):  # (a short write: the rest, without copies)
                view = memoryview(raw)[written:]
                while view:
                    view = view[os.write(fd, view):]

        return cls(write, close=lambda: os.close(fd), **kwargs)

    @classmethod
    def to_stream(cls, stream: IO[str], **kwargs: Any) -> LineHandler:
        def write(data: str) -> None:
            stream.write(data)
            stream.flush()

        return cls(write, **kwargs)

    def write_line(self, line: str) -> None:
        """Queue one line (without its newline); see the class for when it is written."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._lines.append(line)
            self._size += len(line) + 1
            if self._size < self.flush_bytes:
                try:
                    loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    if self._scheduled_on is not loop:  # (another loop's never ran: closed)
                        loop.call_soon(self.flush)
                        self._scheduled_on = loop
                    return
            self._write_safely()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except Exception:  # logging's contract: report, never raise into the caller
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled_on = None
            self._write_safely()

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_safely()
            if not self._closed and self._close is not None:
                self._close()
            self._closed = True
        super().close()

    def _write_safely(self) -> None:
        if not self._lines or self._closed:
            return
        data = "\n".join(self._lines) + "\n"
        self._lines = []
        self._size = 0
        try:
            self._write(data)
        except Exception:  # a full disk must not fail the request whose line this is
            logging.getLogger("sargs.gateway").exception("decision log: write failed")


def configure(log_file: Path | None = None) -> logging.Handler:
    """Send decision lines to ``log_file`` (appended) or standard error."""
    handler = LineHandler.to_file(log_file) if log_file else LineHandler.to_stream(sys.stderr)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def event_of(record: FlowInfo, flow: http.HTTPFlow, policy: str) -> dict[str, Any] | None:
    """The decision line's fields for a flow Sargs decided (None: it decided nothing)."""
    decision, subject, kind = record.decision, record.subject, record.kind
    if decision is None or subject is None:
        return None
    request = flow.request
    event: dict[str, Any] = {
        "event": "decision",
        "user": subject.user,
        "roles": sorted(subject.roles),
        "source": subject.source,
        "platform": decision.platform,
        "host": record.host or request.pretty_host,
        "method": request.method,
        "path": request.path.split("?", 1)[0],
        "kind": kind.value if kind is not None else None,
        "action": decision.action.value,
        "allowed": decision.allowed and record.refused is None,
        "rule": decision.rule.value,
        "reason": decision.reason,
        "role": decision.role,
        "grant": decision.grant,
        "policy": policy,
        "status": flow.response.status_code if flow.response is not None else None,
    }
    if record.refused is not None:
        event["refused"] = record.refused
    if record.verdict is not None:
        event["verdict"] = record.verdict
    if record.findings:
        event["findings"] = [{"rule": h.rule, "severity": h.severity} for h in record.findings]
    if flow.error is not None:
        event["error"] = flow.error.msg
    return event


def write(event: dict[str, Any]) -> None:
    """One decision line: straight to the ``LineHandler``s when they are the logger's only
    handlers (no ``LogRecord`` per request), else through ``logging``."""
    if not log.isEnabledFor(logging.INFO):
        return
    handlers = log.handlers
    if handlers and not log.propagate and all(type(h) is LineHandler for h in handlers):
        line = _encode({
            "ts": datetime.fromtimestamp(time.time(), UTC).isoformat(), "level": "info",
            "logger": log.name, "message": "decision", **event,
        })
        for handler in handlers:
            handler.write_line(line)  # type: ignore[attr-defined]
        return
    log.info("decision", extra={"event": event})


class DecisionLog:
    """Writes the decision line of every flow Sargs decided, when it ends."""

    name = "decisionlog"

    def __init__(self, policy_version: Callable[[], str] = lambda: "") -> None:
        self.policy_version = policy_version

    def response(self, flow: http.HTTPFlow) -> None:
        record = peek(flow)
        if record is None or record.logged:
            return
        event = event_of(record, flow, self.policy_version())
        if event is not None:
            record.logged = True
            write(event)

    error = response

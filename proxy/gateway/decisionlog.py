"""Decisions as JSON lines (logger ``sargs.decisions``).

One line per request to a catalog platform::

    {"ts": "2026-11-23T08:00:00.123456+00:00", "event": "decision", "user": "anna",
     "roles": ["staff"], "source": "basic", "platform": "x", "host": "x.com",
     "method": "GET", "path": "/home", "kind": "page", "action": "read",
     "allowed": true, "rule": "window", "reason": "...", "role": "staff",
     "grant": null, "policy": "2026.11-example+1a2b3c4d"}

Never request or response bodies, never query strings (they can carry draft text or
tokens): ``path`` is the URL path only.

This runs once per proxied request, so it has a fast path. ``configure()`` installs a
``LineHandler``: lines are built with one ``json.dumps`` of a small dict (no
``LogRecord``, no formatter) and written in batches, one per turn of the event loop
(see ``LineHandler``); a clean stop (``logging.shutdown`` at exit) writes what is left,
and a process killed outright (SIGKILL) can lose at most the lines of its last turn.
Any other handler on the logger (a test's ``StreamHandler``, a SIEM forwarder) gets
ordinary ``LogRecord``s with the same ``event`` dict, formatted by ``JsonFormatter`` into
the same line.
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

from proxy.policy.decide import Decision, RequestKind, Subject

log = logging.getLogger("sargs.decisions")

FLUSH_BYTES = 64 * 1024
"""Buffered bytes that trigger a write at once."""

_INFO = logging.INFO
_fromtimestamp = datetime.fromtimestamp
_dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
_string = json.encoder.encode_basestring
"""What ``_dumps`` does with a ``str`` (ensure_ascii=False), without the Python-level call."""


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


class LineHandler(logging.Handler):
    """Batched JSON-lines output: ``write_line`` on the fast path, ``emit`` for records.

    On an event loop's thread, lines are buffered and written together by one callback
    the loop runs as soon as the current callbacks are done (``call_soon``): under load
    one ``write`` carries the lines of a whole loop iteration, and a line is in the file
    before the response that follows its decision is sent. Anywhere else (a worker
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


_second: list[Any] = [None, ""]
"""The last whole second formatted, and its text (``2026-11-23T08:00:00``)."""


def _timestamp(now: float) -> str:
    """``datetime.fromtimestamp(now, UTC).isoformat()``, formatting the date once a second."""
    second = now // 1  # (a float: cheaper than int(), exact all the same)
    if _second[0] != second:
        _second[:] = [second, _fromtimestamp(second, UTC).isoformat()[:19]]
    micro = round((now - second) * 1e6)
    if micro >= 1_000_000:  # rounding reached the next second: let datetime carry it
        return _fromtimestamp(now, UTC).isoformat()
    text: str = _second[1]
    return f"{text}.{micro:06d}+00:00" if micro else f"{text}+00:00"


def _fast_handlers() -> list[LineHandler] | None:
    """The logger's handlers when every one takes lines directly, else None."""
    handlers = log.handlers
    if not handlers or log.propagate or log.filters:
        return None
    out = []
    for handler in handlers:
        if type(handler) is not LineHandler or handler.filters or handler.level > _INFO:
            return None
        out.append(handler)
    return out


_FRAGMENTS_MAX = 4096
_fragments: dict[tuple[Any, ...], tuple[str, str]] = {}
"""Serialized parts of lines around ``path`` for repeated (user, decision, host, ...)."""
_by_identity: dict[tuple[Any, ...], tuple[Decision, Subject, tuple[str, str]]] = {}
"""The same parts by the decision and subject objects themselves (the access addon hands
out the same few again and again), kept beside them so that their ids stay theirs."""


def _fragments_for(
    decision: Decision, subject: Subject, host: str, method: str, kind: RequestKind,
    policy: str,
) -> tuple[str, str]:
    """The JSON of the fields before ``path`` and after it, as ``json.dumps`` writes them:
    found by the objects' identity (a 6-tuple key), else by their fields."""
    key = (id(decision), id(subject), host, method, kind, policy)
    found = _by_identity.get(key)
    if found is not None and found[0] is decision and found[1] is subject:
        return found[2]
    parts = _fragments_by_value(decision, subject, host, method, kind, policy)
    if len(_by_identity) >= _FRAGMENTS_MAX:
        _by_identity.clear()
    _by_identity[key] = (decision, subject, parts)
    return parts


def _fragments_by_value(
    decision: Decision, subject: Subject, host: str, method: str, kind: RequestKind,
    policy: str,
) -> tuple[str, str]:
    key = (subject.user, subject.roles, subject.source, decision.platform, host, method,
           kind, decision.action, decision.allowed, decision.rule, decision.reason,
           decision.role, decision.grant, policy)
    found = _fragments.get(key)
    if found is None:
        before = _dumps({
            "event": "decision", "user": subject.user, "roles": sorted(subject.roles),
            "source": subject.source, "platform": decision.platform, "host": host,
            "method": method,
        })[1:-1]
        after = _dumps({
            "kind": kind.value, "action": decision.action.value,
            "allowed": decision.allowed, "rule": decision.rule.value,
            "reason": decision.reason, "role": decision.role, "grant": decision.grant,
            "policy": policy,
        })[1:-1]
        found = (before, after)
        if len(_fragments) >= _FRAGMENTS_MAX:
            _fragments.clear()
        _fragments[key] = found
    return found


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
    if not log.isEnabledFor(_INFO):
        return
    if "?" in path:
        path = path.split("?", 1)[0]
    fast = _fast_handlers()
    if fast is None:
        log.info("decision", extra={"event": {
            "event": "decision",
            "user": subject.user,
            "roles": sorted(subject.roles),
            "source": subject.source,
            "platform": decision.platform,
            "host": host,
            "method": method,
            "path": path,
            "kind": kind.value,
            "action": decision.action.value,
            "allowed": decision.allowed,
            "rule": decision.rule.value,
            "reason": decision.reason,
            "role": decision.role,
            "grant": decision.grant,
            "policy": policy,
        }})
        return
    # The line ``json.dumps`` writes for that event plus ts, from cached parts: per
    # request only the time and the path differ.
    before, after = _fragments_for(decision, subject, host, method, kind, policy)
    line = f'{{"ts": "{_timestamp(time.time())}", {before}, "path": {_string(path)}, {after}}}'
    for handler in fast:
        handler.write_line(line)

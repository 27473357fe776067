"""Events for the service's audit log: which flows become events, and the on-disk spool
that holds them until the service acknowledged them (:mod:`proxy.gateway.sync` delivers).

Decisions that matter (refusals, refused or warned posts, uses of a grant) become events
with a random id, appended to an on-disk spool (``VAR_DIR/gateway/spool/*.jsonl``, fsync'd
in batches) and delivered in order to ``POST /api/v1/events``. A segment file is deleted
only after the service acknowledged all of it; the service records each event id once, so
a batch sent twice (an acknowledgement lost to a crash) is still recorded exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from proxy.gateway.bundle import fsync_dir
from proxy.gateway.flowinfo import FlowInfo
from proxy.policy.decide import RequestKind

log = logging.getLogger("sargs.gateway.sync")

SEGMENT_EVENTS = 10_000
"""An active spool segment is sealed (and a new one started) at this many events."""
MAX_SPOOL_EVENTS = 1_000_000
"""Beyond this many undelivered events new ones are dropped (and counted) to protect the disk."""
REPEAT_SECONDS = 60.0
"""Refused API/media calls and uses of a grant are reported once per this many seconds
per user, platform and clause (a blocked page fires dozens of them); page loads and posts
are reported every time."""


# --- which flows become events (pure) --------------------------------------------------------


class EventMaker:
    """Turns a flow's record (the access decision, the post check's findings) into an event.

    Reported: every refused page load or post, refused API/media calls (once per
    ``REPEAT_SECONDS`` per user, platform and clause), posts with ``warn`` findings, and
    requests allowed only by a grant (once per ``REPEAT_SECONDS`` per grant), and posts
    let through by an allowance (``allowance-use``, which the service records as the
    allowance's use). Findings in simulation count for nothing here (``posts.py`` reports
    them as ``post-simulated``). Allowed requests by role are not events. Details carry
    rule ids, never text.

    A post refused for its content (or refused by Sargs for any reason after the access
    decision allowed it) is a ``block`` whose details name the findings' rules, not the
    access clause that allowed it: the dashboard counts each block under its rules.
    """

    def __init__(self, gateway: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.gateway = gateway
        self.clock = clock
        self._last: dict[tuple[str | None, ...], float] = {}

    def _repeat(self, key: tuple[str | None, ...]) -> bool:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < REPEAT_SECONDS:
            return True
        if len(self._last) > 50_000:  # bounded: forget entries past their window
            self._last = {k: t for k, t in self._last.items() if now - t < REPEAT_SECONDS}
        self._last[key] = now
        return False

    def make(self, record: FlowInfo, *, host: str, path: str, policy: str, at: datetime
             ) -> dict[str, Any] | None:
        """The event for a flow that ended with this record, or None (not one that matters,
        or reported less than ``REPEAT_SECONDS`` ago)."""
        decision, kind = record.decision, record.kind
        if decision is None:
            return None
        user = record.subject.user if record.subject is not None else None
        request = kind.value if kind is not None else None
        severities = {hit.severity for hit in record.findings if not hit.simulated}
        details: dict[str, Any] = {"gateway": self.gateway, "action": decision.action.value}
        if not decision.allowed:  # refused by the access policy: the clause is the rule
            event_kind = "block"
            details["rule"] = decision.rule.value
            if kind not in (RequestKind.page, RequestKind.post) and self._repeat(
                    ("block", user, decision.platform, request, decision.rule.value)):
                return None
        elif record.allowance is not None:  # a refused post let through once (posts.py)
            event_kind = "allowance-use"
            details["allowance"] = record.allowance
        elif record.refused is not None or "block" in severities:
            event_kind = "block"  # allowed, then refused by Sargs itself (a post's content…)
            details["refused"] = record.refused or "content"
            if not record.findings:  # nothing found to name: the reason is the rule
                details["rule"] = details["refused"]
        elif "warn" in severities:
            event_kind = "warn"
        elif decision.grant is not None:
            event_kind = "grant-use"
            details["rule"] = decision.rule.value
            if self._repeat(("grant", user, decision.grant)):
                return None
        else:
            return None
        details |= {
            "allowed": event_kind != "block", "request": request, "host": host,
            "path": path.split("?", 1)[0], "grant": decision.grant, "role": decision.role,
            "policy": policy,
        }
        if record.verdict is not None:
            details["verdict"] = record.verdict
        if record.findings:  # rule ids and severities, never text
            details["findings"] = [{"rule": h.rule, "severity": h.severity}
                                   | ({"simulated": True} if h.simulated else {})
                                   for h in record.findings]
        return {"id": uuid.uuid4().hex, "kind": event_kind, "at": at.isoformat(),
                "user": user, "platform": decision.platform, "details": details}


    def login_failed(self, *, user: str | None, address: str, count: int, at: datetime
                     ) -> dict[str, Any]:
        """The event for a failed proxy login: every one is reported (the limiter bounds
        how many a guesser can make), with the name tried, never the password."""
        return {"id": uuid.uuid4().hex, "kind": "login-failed", "at": at.isoformat(),
                "user": (user or "")[:128] or None, "platform": None,
                "details": {"gateway": self.gateway, "address": address[:64],
                            "count": count}}


# --- the spool ---------------------------------------------------------------------------------


class Spool:
    """Undelivered events on disk: JSON lines in numbered segment files, oldest first.

    ``add`` only appends to an in-memory batch (it runs in a hook: O(1), no lock held
    while anything is written). ``flush`` appends the batch to the active segment with one
    write and one fsync (call it from a thread); the events just written stay in memory,
    so ``pending`` hands them to delivery without reading the file back, and ``delivered``
    forgets them (deleting the segment once all of it was acknowledged). Segments left by
    an earlier run, or sealed after a failure, are read from disk (``sealed``, ``read``).
    A restarted gateway never appends to an old segment, so a line torn by a crash can
    only be a segment's last; it is skipped when read.
    """

    def __init__(self, directory: Path, max_events: int = MAX_SPOOL_EVENTS) -> None:
        self.directory = directory
        self.max_events = max_events
        self.dropped = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        """Guards the counters and the batch swap; never held during disk I/O."""
        self._flushing = threading.Lock()
        """One flush at a time (the delivery task's, or the one at stop)."""
        self._buffer: list[dict[str, Any]] = []
        self._writing = 0
        """Events taken from the batch, not yet counted on disk."""
        self._counts: dict[Path, int] = {p: len(self.read(p)) for p in self._segments()}
        self._on_disk = sum(self._counts.values())
        existing = [int(p.stem) for p in self._counts]
        self._next = max(existing, default=0) + 1
        self._active: Path | None = None
        self._memory: list[dict[str, Any]] = []
        """The active segment's undelivered events, as written (delivery reads these)."""

    def _segments(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.jsonl") if p.stem.isdigit())

    @property
    def depth(self) -> int:
        """Events waiting for the service (buffered or on disk)."""
        with self._lock:
            return self._on_disk + self._writing + len(self._buffer)

    @property
    def buffered(self) -> int:
        """Events in the in-memory batch, not yet on disk."""
        return len(self._buffer)

    def add(self, event: dict[str, Any]) -> bool:
        """Buffer an event; ``False`` (and counted in ``dropped``) when the spool is full."""
        with self._lock:
            if self._on_disk + self._writing + len(self._buffer) >= self.max_events:
                self.dropped += 1
                return False
            self._buffer.append(event)
            return True

    def flush(self) -> int:
        """Append buffered events to the active segment and fsync it; return how many."""
        with self._flushing:
            with self._lock:
                events, self._buffer = self._buffer, []
                self._writing += len(events)
                active = self._active
                if active is not None and self._counts.get(active, 0) >= SEGMENT_EVENTS:
                    active = None  # sealed: delivered from disk from now on
            if not events:
                return 0
            try:
                new = active is None
                if active is None:
                    active = self.directory / f"{self._next:012d}.jsonl"
                    self._next += 1
                dumps = json.dumps
                data = "".join([dumps(e, separators=(",", ":")) + "\n" for e in events])
                with open(active, "ab") as f:
                    f.write(data.encode())
                    f.flush()
                    os.fsync(f.fileno())
                if new:
                    fsync_dir(self.directory)
            except BaseException:
                with self._lock:  # not written: back to the front of the batch
                    self._buffer[:0] = events
                    self._writing -= len(events)
                raise
            with self._lock:
                self._writing -= len(events)
                self._on_disk += len(events)
                if active != self._active:
                    self._active, self._memory = active, []
                recreated = not new and active not in self._counts  # removed meanwhile
                self._counts[active] = self._counts.get(active, 0) + len(events)
                self._memory.extend(events)
            if recreated:
                fsync_dir(self.directory)
            return len(events)

    def seal(self) -> None:
        """Start a new segment on the next flush; the active one is then read from disk."""
        with self._lock:
            self._active, self._memory = None, []

    def sealed(self) -> list[Path]:
        """Segments to deliver from disk, oldest first (all but the active one)."""
        with self._lock:
            return sorted(p for p in self._counts if p != self._active)

    def pending(self) -> tuple[Path | None, list[dict[str, Any]]]:
        """The active segment and its undelivered events, from memory."""
        with self._lock:
            return self._active, list(self._memory)

    def delivered(self, path: Path, count: int) -> None:
        """The first ``count`` pending events of the active segment ``path`` were
        acknowledged: forget them. A segment all delivered is emptied for the next batch
        when more events wait (no new file: no directory fsync), else deleted. Either lost
        to a crash means events sent again, which the service records once."""
        with self._lock:
            if path != self._active or count <= 0:
                return
            del self._memory[:count]
            left = len(self._memory)
            self._on_disk -= self._counts[path] - left
            self._counts[path] = left
            if left:
                return
            if not self._flushing.acquire(blocking=False):  # a flush appends to it now
                self._active = None  # sealed: read from disk later, and sent again
                return
        try:
            with self._lock:
                reuse = bool(self._buffer)
                if not reuse:
                    self._active = None
                    del self._counts[path]
            if reuse:
                os.truncate(path, 0)
            else:
                path.unlink(missing_ok=True)
        finally:
            self._flushing.release()

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        events = []
        with open(path, "rb") as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    log.warning("skipping a torn spool line", extra={"event": {
                        "event": "spool-torn-line", "path": str(path)}})
                    continue
                if isinstance(event, dict) and isinstance(event.get("id"), str):
                    events.append(event)
        return events

    def remove(self, path: Path) -> None:
        """Forget a delivered segment."""
        with self._lock:
            path.unlink(missing_ok=True)
            self._on_disk -= self._counts.pop(path, 0)
            if path == self._active:
                self._active, self._memory = None, []

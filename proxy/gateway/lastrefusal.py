"""The last post the gateway refused, per user and platform, for the guard on that page.

When the gateway refuses a post (``posts.py``), the platform's own page makes whatever it
makes of a 403 ("Something went wrong"). The compose guard on that page cannot read the
platform's answer (the platform's script sent it), so it asks the gateway instead: after a
possible post (a click, Ctrl+Enter, a submit) it polls

    GET /__sargs/api/v1/last-refusal   ->   {"refusal": {...} | null}

on the platform's own host, and shows its own explanation of a refusal that is newer than
its click. The gateway knows the user from the connection, so a page can only learn about
its own user's refusals on its own platform.

What is kept: an id, when, why (``refused``: post-findings, post-unreadable, ...), the
localised message and each finding's rule, severity, message, guideline and ``ways`` —
never the post's text nor offsets into it. Kept in memory for ``KEEP`` seconds, at most
``MAX_USERS`` (user, platform) pairs (the oldest go first); nothing is written anywhere.

:class:`proxy.gateway.reserved.Reserved` asks it (``answer``) on the reserved path, and
:class:`proxy.gateway.posts.Posts` tells it of each refusal (``remember``): no hook of its
own on every flow.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mitmproxy import http

from proxy.gateway.flowinfo import info, peek
from proxy.gateway.reserved import json_answer

PATH = "/__sargs/api/v1/last-refusal"
KEEP = 120.0
"""Seconds a refusal stays available to the guard."""
MAX_USERS = 10_000
FINDING_FIELDS = ("rule", "severity", "message", "guideline", "ways", "simulated")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Refusal:
    id: str
    at: datetime
    reason: str
    status: int
    message: str
    findings: tuple[dict[str, Any], ...]
    mono: float
    """``time.monotonic()`` when it was recorded: ages are measured on it (the gateway's
    clock may be set for policy time windows; the guard compares with its own click)."""

    def age(self) -> float:
        return time.monotonic() - self.mono

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "reason": self.reason,
                "status": self.status, "age": round(self.age(), 2),
                "message": self.message, "findings": list(self.findings)}


def summary(status: int, reason: str, body: bytes | None, at: datetime) -> Refusal:
    """What the guard may know of a refusal answer: no text, no offsets (pure)."""
    message = ""
    findings: list[dict[str, Any]] = []
    try:
        data = json.loads(body or b"")
    except ValueError:
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("message"), str):
            message = data["message"][:2000]
        for f in data.get("findings") or []:
            if isinstance(f, dict) and isinstance(f.get("rule"), str):
                findings.append({k: f[k] for k in FINDING_FIELDS if k in f})
    return Refusal(secrets.token_urlsafe(9), at, reason, status, message, tuple(findings[:50]),
                   time.monotonic())


class LastRefusals:
    """Remembers each user's last refused post per platform; answers ``PATH``."""

    def __init__(self, now: Callable[[], datetime] = _utcnow) -> None:
        self.now = now
        self.kept: OrderedDict[tuple[str, str], Refusal] = OrderedDict()

    def answer(self, flow: http.HTTPFlow) -> None:
        """Its path (asked by ``Reserved``, on a platform host's reserved path)."""
        if flow.request.path.split("?", 1)[0] != PATH:
            return
        record = info(flow)
        record.generated = "reserved"
        if flow.request.method != "GET":
            flow.response = json_answer(405, {"error": f"method {flow.request.method} not allowed"})
            return
        user = record.subject.user if record.subject else None
        kept = self.kept.get((user, record.platform)) if user and record.platform else None
        if kept is not None and kept.age() > KEEP:
            kept = None
        flow.response = json_answer(200, {"refusal": kept.as_json() if kept else None})

    def remember(self, flow: http.HTTPFlow) -> None:
        """Keep the refusal ``posts.py`` just answered (its ``on_refusal``)."""
        record = peek(flow)
        if record is None or record.generated != "posts" or not record.refused:
            return
        if flow.response is None or record.platform is None or record.subject is None:
            return
        user = record.subject.user
        if not user:
            return
        refusal = summary(flow.response.status_code, record.refused,
                          flow.response.get_content(strict=False), self.now())
        key = (user, record.platform)
        self.kept.pop(key, None)
        self.kept[key] = refusal
        while len(self.kept) > MAX_USERS:
            self.kept.popitem(last=False)

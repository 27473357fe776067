"""Where a call comes from, and how many failed logins it may make.

* ``client_address``: the caller's address.
* ``LoginLimiter``: after ``MAX_FAILURES`` failed logins for one name from one address
  within ``FAILURE_WINDOW`` seconds (or ``MAX_FAILURES_PER_ADDRESS`` from one address for
  any names), further attempts get 429 until the window passes.
"""

from __future__ import annotations

import json
import time
from collections import deque

from aiohttp import web

MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 30
FAILURE_WINDOW = 300.0


def client_address(request: web.Request) -> str:
    return request.remote or "?"


class LoginLimiter:
    """Counts failed logins per (address, name) and per address in a sliding window."""

    def __init__(self, window: float = FAILURE_WINDOW) -> None:
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        while found and found[0] <= now - self.window:
            found.popleft()
        if not found:
            del self._failures[key]
        return found

    def retry_after(self, address: str, name: str, now: float | None = None) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic() if now is None else now
        waits = []
        limits = ((f"{address}|{name}", MAX_FAILURES), (address, MAX_FAILURES_PER_ADDRESS))
        for key, limit in limits:
            recent = self._recent(key, now)
            if len(recent) >= limit:
                waits.append(int(recent[0] + self.window - now) + 1)
        return max(waits, default=0)

    def failed(self, address: str, name: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > 10_000:  # bounded memory under a spray of names
            for key in list(self._failures)[:5_000]:
                del self._failures[key]
        for key in (f"{address}|{name}", address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, address: str, name: str) -> None:
        self._failures.pop(f"{address}|{name}", None)



def too_many(wait: int) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        text=json.dumps({"error": f"too many failed logins: try again in {wait} s"}),
        content_type="application/json", headers={"Retry-After": str(wait)})

"""Where a call comes from, and how many failed logins it may make.

* ``client_address``: the caller's address. Behind a load balancer or reverse proxy the
  socket's peer is the balancer; its ``X-Forwarded-For`` (or ``Forwarded: for=``) header is
  believed only when the peer is in ``Settings.trusted_proxies``, and then the client is
  the rightmost address in it that is not itself a trusted proxy (the leftmost ones are
  whatever the client chose to send). A header a trusted proxy sent that cannot be read
  leaves the peer's address (and a warning in the log). Nothing else trusts an address.
* ``LoginLimiter``: failed logins counted in a sliding window of ``FAILURE_WINDOW``
  seconds, per (client address, name) (``MAX_FAILURES``), per client address for any names
  (``MAX_FAILURES_PER_ADDRESS``: one machine spraying names) and per name from any address
  (``MAX_FAILURES_PER_NAME``: many machines guessing one password). Over a limit, further
  attempts get 429 until the window passes. Keyed by the real client address, so a
  guesser behind the balancer does not lock out everyone else behind it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from functools import lru_cache

from aiohttp import web

from proxy.service import keys

log = logging.getLogger("sargs.service.clients")

MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 30
MAX_FAILURES_PER_NAME = 50
FAILURE_WINDOW = 300.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(listed: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in listed)


def trusted_networks(listed: Sequence[str]) -> tuple[Network, ...]:
    """``Settings.trusted_proxies`` parsed (``ValueError`` names a bad entry)."""
    try:
        return _networks(tuple(listed))
    except ValueError as exc:
        raise ValueError(f"trusted_proxies: {exc}") from None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = text.strip().strip('"')
    if value.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # 192.0.2.1:4711
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _forwarded_chain(request: web.Request) -> list[str]:
    """The addresses the proxies recorded, oldest first."""
    chain: list[str] = []
    for value in request.headers.getall("Forwarded", []):
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, given = pair.strip().partition("=")
                if name.lower() == "for":
                    chain.append(given)
    if not chain:
        for value in request.headers.getall("X-Forwarded-For", []):
            chain.extend(item for item in value.split(","))
    return chain


def client_address(request: web.Request) -> str:
    """The real client's address (see the module's docstring)."""
    peer = request.remote or "?"
    networks = trusted_networks(request.app[keys.SETTINGS].trusted_proxies)
    peer_ip = _ip(peer)
    if not networks or peer_ip is None or not any(peer_ip in n for n in networks):
        return peer
    chain = _forwarded_chain(request)
    if not chain:
        return peer
    for hop in reversed(chain):
        ip = _ip(hop)
        if ip is None:
            log.warning("unreadable forwarding header from trusted proxy %s", peer,
                        extra={"proxy": peer, "hop": hop[:100]})
            return peer
        if not any(ip in n for n in networks):
            return str(ip)
    return str(_ip(chain[0]))


class LoginLimiter:
    """Counts failed logins per (address, name), per address and per name."""

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

    @staticmethod
    def _keys(address: str, name: str) -> tuple[tuple[str, int], ...]:
        return ((f"pair|{address}|{name}", MAX_FAILURES),
                (f"address|{address}", MAX_FAILURES_PER_ADDRESS),
                (f"name|{name}", MAX_FAILURES_PER_NAME))

    def retry_after(self, address: str, name: str, now: float | None = None) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic() if now is None else now
        waits = []
        for key, limit in self._keys(address, name):
            recent = self._recent(key, now)
            if len(recent) >= limit:
                waits.append(int(recent[0] + self.window - now) + 1)
        return max(waits, default=0)

    def failed(self, address: str, name: str, now: float | None = None) -> int:
        """Count one failure; return how many this name from this address has had in the
        window (what the audit entry records)."""
        now = time.monotonic() if now is None else now
        if len(self._failures) > 10_000:  # bounded memory under a spray of names
            for key in list(self._failures)[:5_000]:
                del self._failures[key]
        for key, _ in self._keys(address, name):
            self._failures.setdefault(key, deque()).append(now)
        return len(self._recent(f"pair|{address}|{name}", now))

    def succeeded(self, address: str, name: str) -> None:
        self._failures.pop(f"pair|{address}|{name}", None)


def too_many(wait: int) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        text=json.dumps({"error": f"too many failed logins: try again in {wait} s"}),
        content_type="application/json", headers={"Retry-After": str(wait)})

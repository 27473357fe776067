"""Who is on each client connection: identities remembered per connection.

A browser logs in to the proxy at ``CONNECT``; the requests inside the tunnel carry no
``Proxy-Authorization``, so the login is remembered for the connection, and the outcome
of identifying it too, while the login cache (or, for address-based identities, the
policy in force) says it still holds. Both are kept in ``weakref.WeakKeyDictionary``s
keyed by the client connection, as mitmproxy's ``proxyauth`` keeps logins: they go with
the connection.
"""

from __future__ import annotations

import math
import weakref
from typing import NamedTuple

from mitmproxy import connection

from proxy.gateway.identity import Identifier, IpRanges, Outcome
from proxy.runtime import Compiled


class _Known(NamedTuple):
    """An identity remembered for one client connection."""

    compiled: Compiled
    header: str | None
    outcome: Outcome
    expires: float
    """``Identifier.clock`` time until which it holds (the login cache's expiry)."""
    generation: int


class Clients:
    """Identifies client connections with an :class:`Identifier`, remembering per
    connection the login given at ``CONNECT`` and the outcome."""

    def __init__(self, identifier: Identifier) -> None:
        self.identifier = identifier
        self._logins: weakref.WeakKeyDictionary[connection.Client, str] = (
            weakref.WeakKeyDictionary()
        )
        self._known: weakref.WeakKeyDictionary[connection.Client, _Known] = (
            weakref.WeakKeyDictionary()
        )
        self._ranges: tuple[Compiled | None, IpRanges | None] = (None, None)

    def remember_login(self, client: connection.Client, header: str) -> None:
        """The login a ``CONNECT`` carried, for the requests inside its tunnel."""
        self._logins[client] = header

    async def identify(
        self, compiled: Compiled, client: connection.Client, header: str | None
    ) -> Outcome:
        """Who is on ``client``, given the request's login header (else the one remembered)."""
        header = header or self._logins.get(client)
        identifier = self.identifier
        known = self._known.get(client)
        if (
            known is not None
            and known.compiled is compiled
            and known.header == header
            and known.generation == identifier.generation
            and known.expires > identifier.clock()
        ):
            return known.outcome
        cached, ranges = self._ranges
        if cached is not compiled or ranges is None:
            ranges = IpRanges(compiled.loaded.policy.identity)
            self._ranges = (compiled, ranges)
        address = client.peername[0] if client.peername else ""
        outcome = await identifier.identify(
            header, address, compiled.loaded.policy.identity, ranges, client
        )
        subject = outcome.subject
        if subject is not None:
            expires = (
                identifier.cached_until(header)
                if subject.source == "basic" and header is not None
                else identifier.clock() + identifier.negotiate.fresh_for(client)
                if subject.source == "negotiate" and identifier.negotiate is not None
                else math.inf
            )
            self._known[client] = _Known(
                compiled, header, outcome, expires, identifier.generation
            )
        else:
            self._known.pop(client, None)
        return outcome

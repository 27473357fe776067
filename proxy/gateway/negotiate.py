"""The ``negotiate`` identity source of the gateway: Kerberos sign-on per client connection.

A browser answers ``407 Proxy-Authenticate: Negotiate`` with one ``Proxy-Authorization:
Negotiate <ticket>`` on a connection (on ``CONNECT`` for https) and sends nothing on the
requests after it: Negotiate authenticates the connection, not each request. So the
principal is remembered per client connection (a ``WeakKeyDictionary``, as mitmproxy's
``proxyauth`` keeps logins; gone with the connection), together with the header that
proved it; the access add-on reuses the connection's subject for ``fresh_for`` seconds
(until the directory answer behind it is due for a refresh), as it reuses a Basic login.
A later request on that connection:

- with no ``Proxy-Authorization``, or the same header again: the remembered principal
  (the ticket is never verified twice: MIT's replay cache would refuse it);
- with another Negotiate header: verified afresh; if it fails, the connection forgets
  its principal and the request is refused (407).

A Negotiate header is never remembered across connections: a captured header replayed on
a new connection meets the replay cache and is refused. A change in the directory reaches open
connections after the cache's TTL.
"""

from __future__ import annotations

import weakref

from mitmproxy import connection
from prometheus_client import CollectorRegistry

from proxy.directory.negotiate import Principal, is_negotiate
from proxy.directory.service import DirectoryIdentity, from_settings
from proxy.policy.decide import Subject
from proxy.runtime import PolicyState
from proxy.settings import Settings


class NegotiateLogins:
    def __init__(self, identity: DirectoryIdentity) -> None:
        self.identity = identity
        self._signed_on: weakref.WeakKeyDictionary[connection.Client, tuple[str, Principal]] = (
            weakref.WeakKeyDictionary()
        )

    def principal_of(self, client: connection.Client) -> Principal | None:
        held = self._signed_on.get(client)
        return held[1] if held is not None else None

    def fresh_for(self, client: connection.Client) -> float:
        """Seconds for which this connection's subject stays as it is (0: ask again)."""
        held = self._signed_on.get(client)
        return self.identity.fresh_for(held[1]) if held is not None else 0.0

    async def identify(
        self, client: connection.Client, header: str | None, address: str
    ) -> Subject | str | None:
        """The subject of this connection; ``"login-failed"`` when its Negotiate header is
        refused; None when Negotiate has nothing to say (no Negotiate header and no
        principal on the connection: the next source is tried)."""
        held = self._signed_on.get(client)
        if header is not None and is_negotiate(header):
            if held is None or held[0] != header:
                principal = await self.identity.sign_on(header, address)
                if principal is None:
                    self._signed_on.pop(client, None)
                    return "login-failed"
                held = (header, principal)
                self._signed_on[client] = held
        elif held is None:
            return None
        return await self.identity.subject(held[1])

def negotiate_from_settings(
    settings: Settings,
    state: PolicyState,
    directory: object | None = None,
    registry: CollectorRegistry | None = None,
) -> NegotiateLogins:
    """Negotiate for the realms in ``settings``; roles from the LDAP directory the settings
    name, else from the store's user of the same name (when ``directory`` is the store's)."""
    store = getattr(directory, "store", None)
    store_roles = None
    if store is not None:
        from proxy.store import users

        def store_roles(name: str) -> frozenset[str] | None:
            user = users.get_user(store, name)
            return frozenset(user.roles) if user is not None else None

    identity = from_settings(
        settings, lambda: state.current.loaded.policy.identity.directory_groups,
        store_roles=store_roles, registry=registry,
    )
    return NegotiateLogins(identity)

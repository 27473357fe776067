"""Kerberos (Negotiate) sign-on for the service pages, the form login as fallback.

With ``SARGS_KERBEROS_REALMS`` set, ``GET /login`` answers ``401`` with
``WWW-Authenticate: Negotiate`` and the login form as its body: a browser with a ticket
for ``HTTP/<service host>`` (same keytab as the gateway, or its own principal) retries at
once with ``Authorization: Negotiate …`` and is signed on without a prompt; any other
browser shows the body, the form, as before.

On a good ticket the principal's account (``proxy/directory``) becomes the store user the
session belongs to:

- with a directory (``SARGS_LDAP_URL``): its roles are the directory's mapped roles,
  written to the store user of that name (created with an unusable random password when
  new; roles replaced when they changed, which ends that user's other sessions). So
  approvers are whoever the group mapped to ``approver`` says. No mapped role: no session,
  the form with a message.
- without one: the store user of that name must exist; its roles stay.

Refused tickets are logged and counted as at the gateway (``sargs.identity``).
"""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from proxy.directory.negotiate import Principal, is_negotiate
from proxy.directory.service import DirectoryIdentity, from_settings
from proxy.service import keys
from proxy.store import audit, users
from proxy.store.db import Store
from proxy.store.users import User

IDENTITY = web.AppKey("directory_identity", DirectoryIdentity)


def setup(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    if not settings.kerberos_realms:
        return
    state = app[keys.POLICY]
    app[IDENTITY] = from_settings(
        settings, lambda: state.current.loaded.policy.identity.directory_groups
    )


def offers(request: web.Request) -> bool:
    return IDENTITY in request.app


def challenge(response: web.Response) -> web.Response:
    """The login page as a Negotiate challenge (its body stays the form)."""
    response.set_status(401)
    response.headers["WWW-Authenticate"] = "Negotiate"
    return response


async def sign_on(request: web.Request) -> User | str | None:
    """The store user a request's Negotiate header signs on; ``"no-role"`` when the
    ticket is good but the account holds no role; None when there is no good ticket."""
    header = request.headers.get("Authorization", "")
    if not offers(request) or not is_negotiate(header):
        return None
    from proxy.service.clients import client_address

    identity = request.app[IDENTITY]
    principal = await identity.sign_on(header, client_address(request))
    if principal is None:
        return None
    store = request.app[keys.STORE]
    if identity.cache is None:
        return await asyncio.to_thread(users.get_user, store, principal.account) or "no-role"
    resolution = await identity.resolve(principal)
    if not resolution.roles:
        return "no-role"
    return await asyncio.to_thread(_provision, store, principal, resolution.account,
                                   sorted(resolution.roles))


def _provision(store: Store, principal: Principal, name: str, roles: list[str]) -> User:
    user = users.get_user(store, name)
    actor = f"directory:{principal.name}"
    if user is None:
        return users.add_user(store, name, secrets.token_urlsafe(32), roles, actor=actor)
    if sorted(user.roles) != roles:
        users.set_roles(store, name, roles, actor=actor)
        found = users.get_user(store, name)
        assert found is not None
        return found
    return user


async def record_login(request: web.Request, user: User) -> None:
    from proxy.service.clients import client_address

    await asyncio.to_thread(
        audit.append, request.app[keys.STORE], audit.Kind.login, actor=user.name,
        user=user.name, details={"address": client_address(request), "via": "negotiate"},
    )

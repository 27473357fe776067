"""Negotiate + directory + mapping, put together: a header in, a policy ``Subject`` out.

``DirectoryIdentity.sign_on(header)`` checks a ``Negotiate`` header (``negotiate.py``),
then ``subject(principal)`` finds the account's roles:

- with a directory configured: its groups (``cache.py``: fresh, cached or, when the
  directory is down, the last known ones) mapped to roles by the policy's
  ``identity.directory_groups`` (``roles.py``);
- without one: the roles of the store's user of the same name (``sargs user add`` /
  ``sargs user import``), or none.

Every refused sign-on and every account whose groups give no role is one JSON log line on
``sargs.identity`` with the reason (never a token), and refusals count in
``sargs_identity_refused_total{source,reason}``. The user name on a ``Subject`` is the
account exactly as the directory spells it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from proxy.directory import log_event
from proxy.directory.cache import DirectoryMetrics, GroupCache
from proxy.directory.entries import Account
from proxy.directory.ldap import Directory, DirectoryConfig, DirectoryUnavailable
from proxy.directory.negotiate import Negotiator, Principal, Refused
from proxy.directory.roles import GroupRoles
from proxy.policy.decide import Subject
from proxy.settings import Settings

log = logging.getLogger("sargs.identity")
STORE_CACHE_SECONDS = 60.0
"""Without a directory: how long a store user's roles are reused."""


@dataclass(frozen=True)
class Resolution:
    """How a principal resolved (``sargs identity test`` prints it)."""

    principal: str
    account: str
    dn: str | None
    groups: tuple[str, ...]
    """Every group the directory lists for the account (names)."""
    mapped: tuple[str, ...]
    """The mapped groups that gave roles (as the policy names them)."""
    roles: frozenset[str]
    answered_by: str
    """``directory``, ``cache``, ``stale`` (fail-static), ``store`` or ``none``."""
    age: float
    ignored: str | None

    @property
    def subject(self) -> Subject:
        return Subject(self.account, self.roles, "negotiate")


class DirectoryIdentity:
    def __init__(
        self,
        negotiator: Negotiator | None,
        cache: GroupCache | None,
        mapping: Callable[[], Mapping[str, Sequence[str]]],
        *,
        store_roles: Callable[[str], frozenset[str] | None] | None = None,
        metrics: DirectoryMetrics | None = None,
    ) -> None:
        self.negotiator = negotiator
        self.cache = cache
        self.mapping = mapping
        self.store_roles = store_roles
        self.metrics = metrics or (cache.metrics if cache else None)
        self._compiled: tuple[Mapping[str, Sequence[str]] | None, GroupRoles] = (
            None, GroupRoles({})
        )
        self._subjects: dict[str, tuple[Account | None, GroupRoles, Subject]] = {}
        self._store_cache: dict[str, tuple[float, frozenset[str] | None]] = {}

    def refused(self, source: str, reason: str, detail: str, address: str = "") -> None:
        if self.metrics:
            self.metrics.refused.labels(source, reason).inc()
        log_event(log, logging.WARNING, "sign-on refused", source=source, reason=reason,
                  detail=detail, client=address)

    async def sign_on(self, header: str, address: str = "") -> Principal | None:
        """The principal of a Negotiate header, or None (refused: logged and counted)."""
        if self.negotiator is None:
            self.refused("negotiate", "not-configured", "Negotiate is not set up", address)
            return None
        try:
            return await self.negotiator.accept_async(header)
        except Refused as exc:
            self.refused("negotiate", exc.reason, exc.detail, address)
            return None

    def _roles(self) -> GroupRoles:
        mapping = self.mapping()
        held, compiled = self._compiled
        if held is not mapping:
            compiled = GroupRoles(mapping)
            self._compiled = (mapping, compiled)
        return compiled

    async def _store_lookup(self, account: str) -> frozenset[str] | None:
        now = time.monotonic()
        held = self._store_cache.get(account)
        if held is not None and held[0] > now:
            return held[1]
        assert self.store_roles is not None
        roles = await asyncio.to_thread(self.store_roles, account)
        if not roles:
            log_event(log, logging.INFO, "no role from the store", user=account,
                      reason="no store user with this name" if roles is None else "no role")
        if len(self._store_cache) >= 10_000:
            self._store_cache.clear()
        self._store_cache[account] = (now + STORE_CACHE_SECONDS, roles)
        return roles

    async def resolve(self, principal: Principal) -> Resolution:
        account = principal.account
        if self.cache is None:
            roles = await self._store_lookup(account) if self.store_roles else None
            ignored = None if roles else "no store user with this name or no role"
            return Resolution(principal.name, account, None, (), (), roles or frozenset(),
                              "store" if roles is not None else "none", 0.0, ignored)
        try:
            found = await self.cache.resolve(account, principal.name)
        except DirectoryUnavailable as exc:
            return Resolution(principal.name, account, None, (), (), frozenset(), "none", 0.0,
                              f"directory unreachable: {exc}")
        resolved = self._roles().resolve(found.account)
        entry = found.account
        return Resolution(
            principal.name,
            entry.name if entry else account,
            entry.dn if entry else None,
            tuple(g.name for g in entry.groups) if entry else (),
            resolved.groups,
            resolved.roles,
            found.source,
            found.age(self.cache.clock()),
            resolved.ignored,
        )

    def fresh_for(self, principal: Principal) -> float:
        """Seconds for which ``subject(principal)`` gives the same answer (unless the
        policy changes): until the account's directory (or store) answer is refreshed."""
        if self.cache is not None:
            return self.cache.fresh_for(principal.account)
        held = self._store_cache.get(principal.account)
        return max(0.0, held[0] - time.monotonic()) if held is not None else 0.0

    async def subject(self, principal: Principal) -> Subject:
        """The policy subject of a signed-on principal (no roles: the decision blocks).

        Per request: the cache's answer for the account and, while that answer and the
        policy's mapping are the same objects as last time, the subject made from them."""
        found = None
        if self.cache is not None:
            try:
                found = await self.cache.resolve(principal.account, principal.name)
            except DirectoryUnavailable:
                found = None
            if found is not None:
                memo = self._subjects.get(principal.account)
                roles = self._roles()
                if memo is not None and memo[0] is found.account and memo[1] is roles:
                    return memo[2]
        resolution = await self.resolve(principal)
        if resolution.ignored and found is not None:
            # Once per directory answer (then memoized). An unreachable directory is logged
            # by the cache, once per retry; the store's answers by _store_lookup.
            log_event(log, logging.INFO, "no role from the directory",
                      principal=principal.name, user=resolution.account,
                      reason=resolution.ignored, answered_by=resolution.answered_by)
        subject = resolution.subject
        if self.cache is not None and found is not None:
            if len(self._subjects) >= 100_000:
                self._subjects.clear()
            self._subjects[principal.account] = (found.account, self._roles(), subject)
        return subject


def from_settings(
    settings: Settings,
    mapping: Callable[[], Mapping[str, Sequence[str]]],
    *,
    store_roles: Callable[[str], frozenset[str] | None] | None = None,
    registry: CollectorRegistry | None = None,
) -> DirectoryIdentity:
    """The directory identity the settings describe (Negotiate only with realms set; the
    directory only with ``ldap_url``). ``registry``: where its metrics go (None: nowhere)."""
    metrics = DirectoryMetrics(registry) if registry is not None else None
    negotiator = (
        Negotiator(settings.kerberos_realms, settings.keytab) if settings.kerberos_realms
        else None
    )
    cache = None
    if settings.ldap_url:
        cache = GroupCache(directory_from_settings(settings), settings.ldap_cache_seconds,
                           metrics=metrics)
    return DirectoryIdentity(negotiator, cache, mapping, store_roles=store_roles,
                             metrics=metrics)


def directory_from_settings(settings: Settings) -> Directory:
    return Directory(DirectoryConfig(
        url=settings.ldap_url,
        base=settings.ldap_base,
        bind_dn=settings.ldap_bind_dn,
        bind_password=settings.ldap_bind_password.get_secret_value(),
        user_filter=settings.ldap_user_filter,
        group_base=settings.ldap_group_base,
        kind=settings.ldap_kind,
        disabled_filter=settings.ldap_disabled_filter,
        timeout=settings.ldap_timeout_seconds,
        max_depth=settings.ldap_max_depth,
    ))

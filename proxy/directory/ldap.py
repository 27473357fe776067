"""A user's groups from an LDAP directory (Active Directory or any other), with ``ldap3``.

``Directory.lookup(account)`` is synchronous (ldap3 is): callers on an event loop run it
in a worker thread (``cache.GroupCache`` does). One lookup opens one connection, binds
with the configured account, and searches:

1. the user, by ``user_filter`` (``{user}`` is the account name, ``{principal}`` the full
   Kerberos principal; both escaped for the filter) under ``base``. No entry, or more
   than one, is "no such account".
2. its groups, transitively:

   - **Active Directory** (detected from the root DSE, or ``kind = "ad"``): one search with
     the in-chain matching rule ``(member:1.2.840.113556.1.4.1941:=<user dn>)``; the
     primary group (``primaryGroupID``, not listed in ``member``) is found by its SID (the
     user's domain SID + that RID) and its own parents by the same rule.
   - **elsewhere** (OpenLDAP, 389-ds …): a bounded breadth-first search, one search per
     level: ``(|(member=<dn>)(uniqueMember=<dn>)(memberUid=<uid>)(&(objectClass=
     posixGroup)(gidNumber=<gidNumber>)))`` for the user (the last term is the POSIX
     primary group), then ``(|(member=<g1>)(member=<g2>)…)`` for the groups found, until no
     new group appears, ``max_depth`` levels or ``max_groups`` groups (then the result is
     truncated and says so: fewer groups only ever means fewer roles).

3. whether the account may have a role at all: Active Directory ``userAccountControl``
   bit 2 (disabled) and ``accountExpires``; ``pwdAccountLockedTime`` (OpenLDAP ppolicy) and
   ``shadowExpire`` (RFC 2307) wherever they are present; and, when ``disabled_filter`` is
   set, a base search of the user's entry with that filter (a match means disabled).

Any failure to reach, bind to or search the directory raises ``DirectoryUnavailable``;
the cache then keeps the last known answer (fail-static).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ldap3 import BASE, FIRST, NONE, SUBTREE, Connection, Server, ServerPool
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from proxy.directory.entries import (
    Account,
    Group,
    add_group,
    all_values,
    disabled_reason,
    first_value,
    int_value,
    normalize_dn,
    primary_group_sid,
    text_value,
)

AD_IN_CHAIN = "1.2.840.113556.1.4.1941"
"""Active Directory's LDAP_MATCHING_RULE_IN_CHAIN (transitive membership)."""
AD_CAPABILITY = "1.2.840.113556.1.4.800"
"""LDAP_CAP_ACTIVE_DIRECTORY_OID, listed in the root DSE's supportedCapabilities."""
_OR_BATCH = 64
"""Most DNs in one ``(|(member=…)…)`` filter."""

Kind = Literal["auto", "ad", "ldap"]

DEFAULT_FILTERS = {
    "ad": "(&(objectCategory=person)(objectClass=user)(sAMAccountName={user}))",
    "ldap": "(&(objectClass=person)(uid={user}))",
}
ACCOUNT_ATTRIBUTE = {"ad": "sAMAccountName", "ldap": "uid"}
_USER_ATTRIBUTES = [
    "sAMAccountName", "uid", "cn", "userAccountControl", "accountExpires", "primaryGroupID",
    "objectSid", "gidNumber", "pwdAccountLockedTime", "shadowExpire",
]


class DirectoryUnavailable(Exception):
    """The directory could not be reached, bound to or searched (the reason is the text)."""


@dataclass(frozen=True)
class DirectoryConfig:
    url: str
    """``ldap://host:389`` or ``ldaps://host:636``; several separated by spaces fail over."""
    base: str
    bind_dn: str = ""
    bind_password: str = ""
    user_filter: str = ""
    """Empty: ``DEFAULT_FILTERS`` for the kind."""
    group_base: str = ""
    """Where groups are searched; empty: ``base``."""
    kind: Kind = "auto"
    disabled_filter: str = ""
    timeout: float = 5.0
    max_depth: int = 8
    max_groups: int = 1000


@dataclass
class Directory:
    """Looks accounts up in one directory (thread-safe: one connection per lookup)."""

    config: DirectoryConfig
    searches: int = 0
    """LDAP searches made so far (the benchmark reports it)."""
    _kind: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- connection ------------------------------------------------------------------------

    def _connect(self) -> Connection:
        urls = self.config.url.split()
        servers = [Server(u, get_info=NONE, connect_timeout=self.config.timeout) for u in urls]
        pool = ServerPool(servers, FIRST, active=1, exhaust=True) if len(servers) > 1 else None
        conn = Connection(
            pool or servers[0],
            user=self.config.bind_dn or None,
            password=self.config.bind_password or None,
            receive_timeout=max(1, math.ceil(self.config.timeout)),  # ldap3 wants an int
            auto_referrals=False,
            raise_exceptions=False,
            read_only=True,
        )
        try:
            if conn.bind():
                return conn
            problem = (f"bind as {self.config.bind_dn or 'anonymous'} refused: "
                       f"{conn.result.get('description')}")
        except LDAPException as exc:
            problem = f"cannot reach {self.config.url}: {exc}"
        with contextlib.suppress(LDAPException):
            conn.unbind()
        sock = conn.socket  # ldap3 leaves the socket of a failed connect open
        if sock is not None:
            sock.close()
        raise DirectoryUnavailable(problem)

    def _search(
        self, conn: Connection, base: str, query: str, attributes: Sequence[str],
        scope: Any = SUBTREE,
    ) -> list[tuple[str, dict[str, list[bytes]]]]:
        with self._lock:
            self.searches += 1
        try:
            conn.search(base, query, search_scope=scope, attributes=list(attributes))
        except LDAPException as exc:
            raise DirectoryUnavailable(f"search failed: {exc}") from None
        result = conn.result or {}
        # 0 success, 32 noSuchObject (nothing there), 4 sizeLimitExceeded (partial).
        if result.get("result") not in (0, 4, 32):
            raise DirectoryUnavailable(f"search failed: {result.get('description')}")
        return [
            (entry["dn"], dict(entry.get("raw_attributes", {})))
            for entry in conn.response or []
            if entry.get("type") == "searchResEntry"
        ]

    def kind(self, conn: Connection) -> str:
        """``ad`` or ``ldap``: as configured, or read once from the root DSE."""
        if self.config.kind != "auto":
            return "ad" if self.config.kind == "ad" else "ldap"
        if self._kind is None:
            found = self._search(conn, "", "(objectClass=*)", ["supportedCapabilities"], BASE)
            caps = [v.decode() for _, attrs in found for k, vs in attrs.items()
                    if k.lower() == "supportedcapabilities" for v in vs]
            self._kind = "ad" if AD_CAPABILITY in caps else "ldap"
        return self._kind

    # -- lookups ---------------------------------------------------------------------------

    def lookup(self, account: str, principal: str = "", now: datetime | None = None) -> (
        Account | None
    ):
        """The account named ``account`` with its groups, or None when there is none.
        Raises ``DirectoryUnavailable``."""
        now = now or datetime.now(UTC)
        conn = self._connect()
        try:
            kind = self.kind(conn)
            template = self.config.user_filter or DEFAULT_FILTERS[kind]
            query = template.replace("{user}", escape_filter_chars(account)).replace(
                "{principal}", escape_filter_chars(principal or account)
            )
            found = self._search(conn, self.config.base, query, _USER_ATTRIBUTES)
            if len(found) != 1:
                return None
            dn, attributes = found[0]
            name = text_value(attributes, ACCOUNT_ATTRIBUTE[kind]) or account
            disabled = disabled_reason(attributes, now)
            if disabled is None and self.config.disabled_filter:
                hit = self._search(conn, dn, self.config.disabled_filter, ["1.1"], BASE)
                if hit:
                    disabled = "account disabled (disabled_filter)"
            if kind == "ad":
                groups, truncated = self._ad_groups(conn, dn, attributes)
            else:
                groups, truncated = self._nested_groups(conn, dn, attributes)
            return Account(name, dn, groups, disabled, truncated)
        finally:
            conn.unbind()

    def _group_base(self) -> str:
        return self.config.group_base or self.config.base

    def _ad_groups(
        self, conn: Connection, dn: str, attributes: dict[str, list[bytes]]
    ) -> tuple[tuple[Group, ...], bool]:
        groups: dict[str, Group] = {}
        in_chain = f"(member:{AD_IN_CHAIN}:={escape_filter_chars(dn)})"
        for gdn, attrs in self._search(conn, self._group_base(), in_chain, ["cn"]):
            add_group(groups, gdn, attrs)
        rid, sid = int_value(attributes, "primaryGroupID"), first_value(attributes, "objectSid")
        if rid is not None and sid is not None:
            query = f"(objectSid={escape_bytes(primary_group_sid(sid, rid))})"
            for pdn, attrs in self._search(conn, self._group_base(), query, ["cn"]):
                add_group(groups, pdn, attrs)
                parents = f"(member:{AD_IN_CHAIN}:={escape_filter_chars(pdn)})"
                for gdn, gattrs in self._search(conn, self._group_base(), parents, ["cn"]):
                    add_group(groups, gdn, gattrs)
        return tuple(groups.values()), False

    def _nested_groups(
        self, conn: Connection, dn: str, attributes: dict[str, list[bytes]]
    ) -> tuple[tuple[Group, ...], bool]:
        esc = escape_filter_chars
        terms = [f"(member={esc(dn)})", f"(uniqueMember={esc(dn)})"]
        uid = text_value(attributes, "uid")
        if uid:
            terms.append(f"(memberUid={esc(uid)})")
        gid = int_value(attributes, "gidNumber")
        if gid is not None:
            terms.append(f"(&(objectClass=posixGroup)(gidNumber={gid}))")
        groups: dict[str, Group] = {}
        level = [f"(|{''.join(terms)})"]
        for _depth in range(self.config.max_depth):
            new: list[str] = []
            for query in level:
                for gdn, attrs in self._search(conn, self._group_base(), query, ["cn"]):
                    if add_group(groups, gdn, attrs):
                        new.append(gdn)
                        if len(groups) >= self.config.max_groups:
                            return tuple(groups.values()), True
            if not new:
                return tuple(groups.values()), False
            level = [
                "(|" + "".join(f"(member={esc(g)})(uniqueMember={esc(g)})" for g in batch) + ")"
                for batch in _batches(new, _OR_BATCH)
            ]
        return tuple(groups.values()), True

    # -- for IT's tools --------------------------------------------------------------------

    def find_group(self, key: str) -> str | None:
        """The DN of a group given by DN or by name (``cn``), or None."""
        conn = self._connect()
        try:
            if "=" in key:
                found = self._search(conn, key, "(objectClass=*)", ["1.1"], BASE)
            else:
                query = f"(&(cn={escape_filter_chars(key)})(|(objectClass=group)"
                query += "(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
                query += "(objectClass=posixGroup)))"
                found = self._search(conn, self._group_base(), query, ["1.1"])
            return found[0][0] if len(found) == 1 else None
        finally:
            conn.unbind()

    def members(self, group_dn: str) -> set[str]:
        """The DNs of the people in a group, nested groups included (bounded as above)."""
        conn = self._connect()
        try:
            people: set[str] = set()
            seen = {normalize_dn(group_dn)}
            level = [group_dn]
            for _depth in range(self.config.max_depth):
                nxt: list[str] = []
                for gdn in level:
                    found = self._search(conn, gdn, "(objectClass=*)",
                                         ["member", "uniqueMember", "objectClass"], BASE)
                    for _, attrs in found:
                        for mdn in all_values(attrs, "member") + all_values(attrs, "uniqueMember"):
                            if normalize_dn(mdn) in seen:
                                continue
                            seen.add(normalize_dn(mdn))
                            nxt.append(mdn)
                people |= {m for m in nxt if not self._is_group(conn, m)}
                level = [m for m in nxt if m not in people]
                if not level:
                    break
            return people
        finally:
            conn.unbind()

    def _is_group(self, conn: Connection, dn: str) -> bool:
        found = self._search(conn, dn, "(objectClass=*)", ["objectClass"], BASE)
        classes = {v.lower() for _, a in found for v in all_values(a, "objectClass")}
        return bool(classes & {"group", "groupofnames", "groupofuniquenames", "posixgroup"})


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


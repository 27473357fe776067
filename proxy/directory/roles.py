"""Directory groups → Sargs roles, from the policy's ``identity.directory_groups``.

The mapping's keys are group DNs (``CN=Sargs Staff,OU=Groups,DC=example,DC=org``, matched
in any case and spacing) or group names (the group's ``cn``, matched case-insensitively).
A user holds every role of every mapped group they are in, directly, through nested
groups or as their primary group. Several roles combine as the policy combines any
roles (``proxy/policy/decide.py``): roles only grant, the most permissive access level
among them wins per platform, and a ``deny`` entry still wins over all of them.
A disabled, expired or locked account holds no role, whatever its groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.directory.entries import Account, normalize_dn


def is_dn(key: str) -> bool:
    """Whether a mapping key is meant as a DN (it has ``attr=value``) rather than a name."""
    return "=" in key


@dataclass(frozen=True)
class Resolved:
    roles: frozenset[str]
    groups: tuple[str, ...]
    """The mapped groups (as the policy names them) that gave the roles."""
    ignored: str | None = None
    """Why the account's groups gave no role (disabled, not found …), or None."""


class GroupRoles:
    """A compiled ``directory_groups`` mapping."""

    def __init__(self, mapping: Mapping[str, Iterable[str]]) -> None:
        self._by_dn: dict[str, tuple[str, frozenset[str]]] = {}
        self._by_name: dict[str, tuple[str, frozenset[str]]] = {}
        for key, roles in mapping.items():
            entry = (key, frozenset(roles))
            if is_dn(key):
                self._by_dn[normalize_dn(key)] = entry
            else:
                self._by_name[key.casefold()] = entry
        self.keys = tuple(mapping)

    def resolve(self, account: Account | None) -> Resolved:
        if account is None:
            return Resolved(frozenset(), (), "no such account in the directory")
        if account.disabled is not None:
            return Resolved(frozenset(), (), account.disabled)
        roles: set[str] = set()
        matched: list[str] = []
        for group in account.groups:
            for entry in (self._by_dn.get(group.key), self._by_name.get(group.name.casefold())):
                if entry is not None and entry[0] not in matched:
                    matched.append(entry[0])
                    roles |= entry[1]
        if not matched:
            return Resolved(frozenset(), (), "in no mapped group")
        return Resolved(frozenset(roles), tuple(matched))

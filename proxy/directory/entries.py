"""Directory entries as Sargs reads them: accounts, groups, DNs, and the attributes that
say an account may hold no role (pure: no network; ``ldap.py`` does the searching)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

_UAC_DISABLED = 0x2
_FILETIME_EPOCH = 116_444_736_000_000_000  # 1970-01-01 in 100 ns since 1601-01-01
_NEVER = (0, 0x7FFF_FFFF_FFFF_FFFF)
def normalize_dn(dn: str) -> str:
    """A DN in one spelling for comparison: attribute types and values case-folded, no
    spaces around separators (``CN=Staff, DC=Example`` → ``cn=staff,dc=example``).
    Raises ``ValueError`` when ``dn`` is not a DN."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError as exc:
        raise ValueError(f"{dn!r} is not a DN: {exc}") from None
    if not parts:
        raise ValueError(f"{dn!r} is not a DN")
    out = []
    for attribute, value, separator in parts:
        out.append(f"{attribute.lower()}={value.lower()}")
        out.append("+" if separator == "+" else ",")
    return "".join(out[:-1])


@dataclass(frozen=True, slots=True)
class Group:
    dn: str
    """As the directory spells it."""
    name: str
    """Its ``cn`` (or the DN's first value)."""
    key: str = ""
    """``normalize_dn(dn)``, computed once (the role mapping compares it)."""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", normalize_dn(self.dn))


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    """The account name exactly as the directory spells it (``sAMAccountName``/``uid``)."""
    dn: str
    groups: tuple[Group, ...]
    disabled: str | None = None
    """Why the account may hold no role (disabled, expired, locked), or None."""
    truncated: bool = False
    """The group search stopped at ``max_depth``/``max_groups``."""


def filetime_expired(value: int, now: datetime) -> bool:
    """Whether an Active Directory ``accountExpires`` (FILETIME) lies before ``now``."""
    if value in _NEVER or value < 0:
        return False
    return (value - _FILETIME_EPOCH) / 10_000_000 <= now.timestamp()


def primary_group_sid(user_sid: bytes, rid: int) -> bytes:
    """The SID of a user's primary group: the user's SID with its last RID replaced."""
    if len(user_sid) < 12 or len(user_sid) != 8 + 4 * user_sid[1]:
        raise ValueError("not a SID")
    return user_sid[:-4] + struct.pack("<I", rid)


def first_value(attributes: dict[str, list[bytes]], name: str) -> bytes | None:
    for key, values in attributes.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def text_value(attributes: dict[str, list[bytes]], name: str) -> str | None:
    raw = first_value(attributes, name)
    return raw.decode("utf-8", "replace") if raw is not None else None


def int_value(attributes: dict[str, list[bytes]], name: str) -> int | None:
    text = text_value(attributes, name)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def name_of(dn: str, attributes: dict[str, list[bytes]]) -> str:
    cn = text_value(attributes, "cn")
    if cn:
        return cn
    parts = parse_dn(dn, escape=False, strip=True)
    return str(parts[0][1]) if parts else dn


def disabled_reason(attributes: dict[str, list[bytes]], now: datetime) -> str | None:
    """Why an account entry may hold no role, from its attributes (None: it may)."""
    uac = int_value(attributes, "userAccountControl")
    if uac is not None and uac & _UAC_DISABLED:
        return "account disabled (userAccountControl)"
    expires = int_value(attributes, "accountExpires")
    if expires is not None and filetime_expired(expires, now):
        return "account expired (accountExpires)"
    if first_value(attributes, "pwdAccountLockedTime") is not None:
        return "account locked (pwdAccountLockedTime)"
    shadow = int_value(attributes, "shadowExpire")
    if shadow is not None and shadow >= 0 and shadow * 86400 <= now.timestamp():
        return "account expired (shadowExpire)"
    return None


def add_group(groups: dict[str, Group], dn: str, attributes: dict[str, list[bytes]]) -> bool:
    """Add a found group (by its normalized DN); False when it was there already."""
    group = Group(dn, name_of(dn, attributes))
    if group.key in groups:
        return False
    groups[group.key] = group
    return True


def all_values(attributes: dict[str, list[bytes]], name: str) -> list[str]:
    for key, values in attributes.items():
        if key.lower() == name.lower():
            return [v.decode("utf-8", "replace") for v in values]
    return []

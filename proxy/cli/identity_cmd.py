"""``sargs identity …``: how directory users resolve (for IT; docs/identity.md).

Both commands ask the directory the settings name (``SARGS_LDAP_*``) directly; the
gateway's own cache is per process and is not consulted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from proxy.directory.ldap import DirectoryUnavailable
from proxy.directory.negotiate import Principal, Refused, split_principal
from proxy.directory.service import Resolution, directory_from_settings, from_settings
from proxy.policy.loader import PolicyError, load
from proxy.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("identity", help="directory sign-on: how users resolve to roles")
    parser.add_argument("--policy", metavar="DIR",
                        help="policy with the group mapping (default: the configured one)")
    cmds = parser.add_subparsers(dest="identity_command", metavar="ACTION", required=True)
    test = cmds.add_parser(
        "test", help="how a user resolves: principal, account, groups, roles, source")
    test.add_argument("user", help="an account name or a principal (alice@EXAMPLE.ORG)")
    test.set_defaults(handler=_test)
    groups = cmds.add_parser("groups", help="the mapped groups and how many users each has")
    groups.set_defaults(handler=_groups)


def _fail(message: str, code: int = 1) -> int:
    print(f"sargs identity: {message}", file=sys.stderr)
    return code


def _mapping(args: argparse.Namespace) -> dict[str, list[str]]:
    try:
        loaded = load(args.policy or Settings().policy)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    return dict(loaded.policy.identity.directory_groups)


def _principal(user: str, settings: Settings) -> Principal:
    if "@" in user:
        account, realm = split_principal(user)
        return Principal(user, account, realm)
    realm = settings.kerberos_realms[0] if settings.kerberos_realms else ""
    return Principal(f"{user}@{realm}" if realm else user, user, realm)


def _store_roles(settings: Settings) -> Any:
    from proxy.store import open_store, users

    def roles(name: str) -> frozenset[str] | None:
        with open_store(settings.database) as store:
            user = users.get_user(store, name)
        return frozenset(user.roles) if user else None

    return roles


def _test(args: argparse.Namespace) -> int:
    settings = Settings()
    mapping = _mapping(args)
    try:
        principal = _principal(args.user, settings)
    except Refused as exc:
        return _fail(exc.detail)
    identity = from_settings(settings, lambda: mapping, store_roles=_store_roles(settings))
    started = time.monotonic()
    resolution = asyncio.run(identity.resolve(principal))
    took = time.monotonic() - started
    _print(resolution, settings, took)
    if principal.realm and principal.realm not in settings.kerberos_realms:
        print(f"note: realm {principal.realm!r} is not in SARGS_KERBEROS_REALMS: "
              "Negotiate refuses its tickets")
    if resolution.ignored and resolution.ignored.startswith("directory unreachable"):
        return 2
    return 0


def _print(r: Resolution, settings: Settings, took: float) -> None:
    rows = [
        ("principal", r.principal),
        ("account", r.account + (f"  ({r.dn})" if r.dn else "")),
        ("groups", ", ".join(r.groups) or "-"),
        ("mapped", ", ".join(r.mapped) or "-"),
        ("roles", ", ".join(sorted(r.roles)) or "- (no role: access is blocked)"),
    ]
    if r.answered_by in ("directory", "cache", "stale"):
        source = (f"{r.answered_by} ({took * 1000:.0f} ms; cache age {r.age:.0f} s; "
                  f"gateways reuse it for {settings.ldap_cache_seconds:g} s)")
    else:
        source = r.answered_by
    rows.append(("source", source))
    if r.ignored:
        rows.append(("no role", r.ignored))
    for label, value in rows:
        print(f"{label + ':':<11}{value}")


def _groups(args: argparse.Namespace) -> int:
    settings = Settings()
    mapping = _mapping(args)
    if not settings.ldap_url:
        return _fail("no directory configured (SARGS_LDAP_URL)")
    directory = directory_from_settings(settings)
    rows = [("GROUP", "ROLES", "USERS")]
    try:
        for key, roles in mapping.items():
            dn = directory.find_group(key)
            users = "not found" if dn is None else str(len(directory.members(dn)))
            rows.append((key, ",".join(roles), users))
    except DirectoryUnavailable as exc:
        return _fail(str(exc), 2)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0

"""``sargs user …``: logins for the gateway (proxy login) and the service.

Roles are the policy's role ids plus the service's own ``approver`` and ``admin``; names
are checked against the configured policy (``SARGS_POLICY`` or ``--policy``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from proxy.policy.loader import PolicyError, load
from proxy.settings import Settings
from proxy.store import StoreError, audit, sessions, users
from proxy.store.db import Store, open_configured


def register(sub: Any) -> None:
    parser = sub.add_parser("user", help="manage logins: users, roles, passwords")
    parser.add_argument("--policy", metavar="DIR",
                        help="policy whose roles are valid (default: the configured one)")
    cmds = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = cmds.add_parser("add", help="add a user (asks for the password twice)")
    add.add_argument("name")
    _role_option(add)
    add.add_argument("--email")
    add.add_argument("--display-name")
    add.add_argument("--department", help="for approval scopes in the policy")
    _password_option(add)
    add.set_defaults(handler=_add)

    lst = cmds.add_parser("list", help="list users and their roles")
    lst.add_argument("--role", help="only users holding this role")
    lst.set_defaults(handler=_list)

    remove = cmds.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)

    passwd = cmds.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    _password_option(passwd)
    passwd.set_defaults(handler=_passwd)

    logout = cmds.add_parser("logout", help="end every service session of a user now (a "
                                            "password or role change does this too)")
    logout.add_argument("name")
    logout.set_defaults(handler=_logout)

    roles = cmds.add_parser("roles", help="replace a user's roles")
    roles.add_argument("name")
    _role_option(roles)
    roles.set_defaults(handler=_roles)


def _role_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", dest="roles", action="append", required=True, metavar="ROLE",
                        help="a policy role id, or approver/admin (repeat for several)")


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")


def _fail(message: str) -> int:
    print(f"sargs user: {message}", file=sys.stderr)
    return 1


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _valid_roles(args: argparse.Namespace) -> frozenset[str]:
    try:
        loaded = load(args.policy or Settings().policy)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    return frozenset(loaded.policy.roles) | users.SERVICE_ROLES


def _check_roles(args: argparse.Namespace) -> str | None:
    valid = _valid_roles(args)
    unknown = [r for r in args.roles if r not in valid]
    if unknown:
        return (f"unknown role {', '.join(map(repr, unknown))}; valid roles: "
                f"{', '.join(sorted(valid))}")
    return None


class _NoPassword(Exception):
    pass


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise _NoPassword("no password on standard input")
        return line
    if not sys.stdin.isatty():
        raise _NoPassword("standard input is not a terminal: use --password-stdin")
    first = getpass.getpass("Password: ")
    if not first:
        raise _NoPassword("empty password")
    if getpass.getpass("Password (again): ") != first:
        raise _NoPassword("the passwords do not match")
    return first


def _store() -> Store:
    return open_configured(Settings())


def _add(args: argparse.Namespace) -> int:
    problem = _check_roles(args)
    if problem:
        return _fail(problem)
    try:
        password = _password(args)
    except _NoPassword as exc:
        return _fail(str(exc))
    with _store() as store:
        try:
            user = users.add_user(store, args.name, password, args.roles, email=args.email,
                                  display_name=args.display_name, department=args.department,
                                  actor=_actor())
        except StoreError as exc:
            return _fail(str(exc))
    print(f"added {user.name} ({', '.join(user.roles)})")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _store() as store:
        found = users.list_users(store, role=args.role)
    rows = [("NAME", "ROLES", "EMAIL", "DEPARTMENT")]
    rows += [(u.name, ",".join(u.roles), u.email or "", u.department or "") for u in found]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _remove(args: argparse.Namespace) -> int:
    with _store() as store:
        try:
            users.remove_user(store, args.name, actor=_actor())
        except StoreError as exc:
            return _fail(str(exc))
    print(f"removed {args.name}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    try:
        password = _password(args)
    except _NoPassword as exc:
        return _fail(str(exc))
    with _store() as store:
        try:
            users.set_password(store, args.name, password, actor=_actor())
        except StoreError as exc:
            return _fail(str(exc))
    print(f"password of {args.name} changed")
    return 0


def _roles(args: argparse.Namespace) -> int:
    problem = _check_roles(args)
    if problem:
        return _fail(problem)
    with _store() as store:
        try:
            users.set_roles(store, args.name, args.roles, actor=_actor())
        except StoreError as exc:
            return _fail(str(exc))
    print(f"roles of {args.name}: {', '.join(dict.fromkeys(args.roles))}")
    return 0


def _logout(args: argparse.Namespace) -> int:
    with _store() as store:
        ended = sessions.end_all(store, args.name, by=_actor())
        audit.append(store, audit.Kind.logout, actor=_actor(), user=args.name,
                     details={"everywhere": True, "sessions_ended": ended})
    print(f"ended {ended} session(s) of {args.name}")
    return 0

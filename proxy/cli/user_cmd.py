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

    _register_import(cmds)


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


# --- sargs user import FILE.csv (sites without a directory) ---------------------------------

IMPORT_COLUMNS = ("name", "roles", "email", "display_name", "department", "password")


def _register_import(cmds: Any) -> None:
    imp = cmds.add_parser(
        "import", help="add users from a CSV file (name,roles,email,display_name,department,"
        "password); all rows are checked before any is added",
    )
    imp.add_argument("file", help="CSV with a header row; roles separated by ';' or spaces")
    imp.add_argument("--update", action="store_true",
                     help="replace the roles of users that already exist (default: refuse)")
    imp.add_argument("--passwords-out", metavar="FILE",
                     help="where to write generated passwords (name,password; mode 0600) for "
                     "rows without one; without it such rows are refused")
    imp.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    import csv
    import os
    import secrets

    valid = _valid_roles(args)
    try:
        with open(args.file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            unknown = [h for h in header if h not in IMPORT_COLUMNS]
            if "name" not in header or "roles" not in header or unknown:
                return _fail(f"{args.file}:1: the header must name 'name' and 'roles' and only "
                             f"{', '.join(IMPORT_COLUMNS)}" + (f" (unknown: {unknown})"
                                                                if unknown else ""))
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return _fail(f"{args.file}: {exc}")
    errors: list[str] = []
    planned: list[tuple[str, tuple[str, ...], dict[str, str | None], str | None]] = []
    seen: set[str] = set()
    with _store() as store:
        for line, row in rows:
            where = f"{args.file}:{line}"
            name = (row.get("name") or "").strip()
            try:
                name = users.check_name(name)
            except (StoreError, ValueError) as exc:
                errors.append(f"{where}: name: {exc}")
                continue
            if name in seen:
                errors.append(f"{where}: name: {name!r} appears twice")
            seen.add(name)
            roles = tuple((row.get("roles") or "").replace(";", " ").split())
            bad = [r for r in roles if r not in valid]
            if not roles or bad:
                errors.append(f"{where}: roles: " + (f"unknown role {', '.join(map(repr, bad))}"
                                                     if bad else "no role given"))
            exists = users.get_user(store, name) is not None
            if exists and not args.update:
                errors.append(f"{where}: name: {name!r} already exists (use --update)")
            password = row.get("password") or None
            if not exists and password is None and not args.passwords_out:
                errors.append(f"{where}: password: empty (give one or use --passwords-out)")
            extra = {k: (row.get(k) or "").strip() or None
                     for k in ("email", "display_name", "department")}
            planned.append((name, roles, extra, None if exists else password or ""))
        if errors:
            for error in errors:
                print(error, file=sys.stderr)
            return _fail(f"nothing imported: {len(errors)} error(s)")
        generated: list[tuple[str, str]] = []
        for name, roles, extra, password in planned:
            if password is None:
                users.set_roles(store, name, roles, actor=_actor())
                continue
            if not password:
                password = secrets.token_urlsafe(12)
                generated.append((name, password))
            users.add_user(store, name, password, roles, email=extra["email"],
                           display_name=extra["display_name"],
                           department=extra["department"], actor=_actor())
    if generated:
        fd = os.open(args.passwords_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([("name", "password"), *generated])
    added = sum(1 for p in planned if p[3] is not None)
    print(f"imported {added} new user(s), updated {len(planned) - added}"
          + (f"; generated passwords in {args.passwords_out}" if generated else ""))
    return 0

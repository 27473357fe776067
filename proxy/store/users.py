"""Users who log in to the gateway (proxy login) and the service, with argon2 hashes.

Roles are plain strings: the policy's role ids (``staff``, ``communicator``…), plus two
that the service itself understands:

* ``approver`` — may decide access requests (which ones is policy: approver scopes);
* ``admin`` — may manage users, revoke any grant, read the audit log.

The store does not check role names against a policy (the policy changes on its own
schedule); ``sargs user`` does, and the gateway ignores roles the policy does not know.
Each change writes an audit entry (``user-add``, ``user-remove``, ``user-password``,
``user-roles``) in the same transaction; a password change, a role change and a removal
also end the user's service sessions there (``sessions.py``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from proxy.store import audit, sessions
from proxy.store.common import aware, text_field, utcnow
from proxy.store.db import Store
from proxy.store.errors import AlreadyExists, InvalidInput, NotFound
from proxy.store.schema import users

SERVICE_ROLES = frozenset({"approver", "admin"})
"""Roles the service understands besides the policy's own."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    roles: tuple[str, ...]
    email: str | None = None
    display_name: str | None = None
    department: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles


def _user(row: Row[Any]) -> User:
    m = row._mapping
    return User(name=m["name"], roles=tuple(m["roles"]), email=m["email"],
                display_name=m["display_name"], department=m["department"],
                created_at=m["created_at"], updated_at=m["updated_at"])


def check_name(name: str) -> str:
    """A valid user name (letters, digits, ``. _ @ + -``; no ``:`` for Basic auth)."""
    if not _NAME.fullmatch(name or ""):
        raise InvalidInput("name", "use 1–128 letters, digits or . _ @ + - "
                                   "(starting with a letter or digit)")
    return name


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Roles de-duplicated in their order; at least one; each a plain identifier."""
    seen: dict[str, None] = {}
    for role in roles:
        if not _ROLE.fullmatch(role or ""):
            raise InvalidInput("roles", f"{role!r} is not a role id")
        seen[role] = None
    if not seen:
        raise InvalidInput("roles", "give at least one role")
    return tuple(seen)


def _password(password: str) -> str:
    if not password:
        raise InvalidInput("password", "is required")
    if len(password) > 1024:
        raise InvalidInput("password", "is longer than 1024 characters")
    return password


def add_user(store: Store, name: str, password: str, roles: Iterable[str], *,
             email: str | None = None, display_name: str | None = None,
             department: str | None = None, actor: str | None = None,
             now: datetime | None = None) -> User:
    """Create a user; ``AlreadyExists`` if the name is taken."""
    check_name(name)
    role_list = check_roles(roles)
    now = aware(now)
    digest = store.hasher.hash(_password(password))
    user = User(
        name=name, roles=role_list,
        email=text_field(email, "email", max_len=320, required=False),
        display_name=text_field(display_name, "display_name", max_len=200, required=False),
        department=text_field(department, "department", max_len=200, required=False),
        created_at=now, updated_at=now,
    )
    try:
        with store.write() as conn:
            conn.execute(sa.insert(users).values(
                name=name, password_hash=digest, roles=list(role_list), email=user.email,
                display_name=user.display_name, department=user.department,
                created_at=now, updated_at=now))
            audit.append_in(conn, audit.Kind.user_add, at=now, actor=actor, user=name,
                            details={"roles": list(role_list)})
    except IntegrityError:
        raise AlreadyExists(f"user {name!r} exists already") from None
    return user


def get_user(store: Store, name: str) -> User | None:
    with store.read() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    return _user(row) if row is not None else None


def list_users(store: Store, *, role: str | None = None) -> list[User]:
    """Every user by name; only those holding ``role`` if given."""
    with store.read() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
    found = [_user(r) for r in rows]
    return [u for u in found if role in u.roles] if role is not None else found


def _update(store: Store, name: str, values: dict[str, Any], kind: audit.Kind,
            details: dict[str, Any], actor: str | None, now: datetime) -> None:
    with store.write() as conn:
        result = conn.execute(sa.update(users).where(users.c.name == name)
                              .values(**values, updated_at=now))
        if result.rowcount != 1:
            raise NotFound(f"no user {name!r}")
        ended = sessions.end_all_in(conn, name, by=actor or "store", now=now)
        audit.append_in(conn, kind, at=now, actor=actor, user=name,
                        details={**details, "sessions_ended": ended})


def set_password(store: Store, name: str, password: str, *, actor: str | None = None,
                 now: datetime | None = None) -> None:
    digest = store.hasher.hash(_password(password))
    _update(store, name, {"password_hash": digest}, audit.Kind.user_password, {}, actor,
            aware(now))


def set_roles(store: Store, name: str, roles: Iterable[str], *, actor: str | None = None,
              now: datetime | None = None) -> None:
    role_list = list(check_roles(roles))
    _update(store, name, {"roles": role_list}, audit.Kind.user_roles, {"roles": role_list},
            actor, aware(now))


def remove_user(store: Store, name: str, *, actor: str | None = None,
                now: datetime | None = None) -> None:
    """Delete a user (their requests, grants and audit entries stay)."""
    now = aware(now)
    with store.write() as conn:
        if conn.execute(sa.delete(users).where(users.c.name == name)).rowcount != 1:
            raise NotFound(f"no user {name!r}")
        ended = sessions.end_all_in(conn, name, by=actor or "store", now=now)
        audit.append_in(conn, audit.Kind.user_remove, at=now, actor=actor, user=name,
                        details={"sessions_ended": ended})


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("sargs: no such user")


def verify_password(store: Store, name: str, password: str) -> User | None:
    """The user if ``password`` is theirs, else ``None`` (unknown user or wrong password).

    Unknown users cost the same argon2 check as known ones (against a dummy hash), so
    timing does not tell which names exist. A hash made with other parameters than the
    store's hasher is replaced on success. Slow on purpose (tens of ms): the gateway
    caches successful logins and calls this in a thread.
    """
    with store.read() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    hasher = store.hasher
    if row is None:
        with contextlib.suppress(VerificationError):
            hasher.verify(_dummy_hash(hasher), password or "-")
        return None
    digest: str = row.password_hash
    try:
        hasher.verify(digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(digest):
        new = hasher.hash(password)
        with store.write() as conn:
            # Only if nobody changed the password meanwhile.
            conn.execute(sa.update(users)
                         .where(users.c.name == name, users.c.password_hash == digest)
                         .values(password_hash=new, updated_at=utcnow()))
    return _user(row)

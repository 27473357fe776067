"""Negotiate (SPNEGO/Kerberos) on the server side, with pyspnego: a header in, a user out.

``Negotiator.accept("Negotiate <base64>")`` runs one acceptor step of pyspnego's server
context (Kerberos completes in one step) and returns the client's ``Principal``, or raises
``Refused`` with a short reason key (for logs and metric labels) and a detail.

- The acceptor's keys come from the keytab named by ``KRB5_KTNAME`` (MIT's own variable;
  ``Negotiator(keytab=…)`` sets it for the process). It accepts a ticket for any service
  principal in that keytab (``HTTP/gateway.example.org@REALM``).
- Only Kerberos is accepted: a context that needs another round (NTLM inside SPNEGO) is
  refused, not continued; so is a principal of a realm not in ``realms``, a principal with
  an instance (``user/admin@REALM``, ``HTTP/host@REALM``: not a person) and anything that
  is not strict base64 of at most ``MAX_TOKEN_BYTES``.
- GSSAPI checks the ticket itself (key, lifetime, clock skew) and MIT's replay cache
  refuses a token seen before, so a captured header cannot be replayed on another
  connection.
- ``accept`` is synchronous (gssapi reads the keytab and writes the replay cache): call it
  from a worker thread on an event loop (``accept_async``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import spnego
from spnego.exceptions import SpnegoError

MAX_TOKEN_BYTES = 64 * 1024
"""Largest token accepted (Active Directory tickets with a big PAC reach ~48 KB)."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    """``user@REALM`` as the ticket names it."""
    account: str
    """The directory account it maps to (the part before the realm)."""
    realm: str


class Refused(Exception):
    """A Negotiate header that signs nobody on. ``reason`` is a short stable key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def is_negotiate(header: str) -> bool:
    """Whether an Authorization/Proxy-Authorization value uses the Negotiate scheme."""
    return header.lstrip()[:10].lower() == "negotiate "


def token_of(header: str | None) -> bytes | None:
    """The token of a ``Negotiate <base64>`` header; None when the scheme is another.
    Raises ``Refused('malformed')`` for a Negotiate header that is not strict base64."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "negotiate":
        return None
    value = value.strip()
    if not value or len(value) > MAX_TOKEN_BYTES * 4 // 3 + 4:
        raise Refused("malformed", "empty or oversized Negotiate token")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("malformed", "Negotiate token is not base64") from None


def split_principal(name: str) -> tuple[str, str]:
    """``alice@EXAMPLE.ORG`` → ``("alice", "EXAMPLE.ORG")`` (the last unescaped ``@``)."""
    i = len(name)
    while True:
        i = name.rfind("@", 0, i)
        if i <= 0:
            raise Refused("not-a-user", f"principal {name!r} has no realm")
        if name[i - 1] != "\\":
            return name[:i], name[i + 1:]


class Negotiator:
    """Accepts Negotiate headers for the given realms."""

    def __init__(self, realms: Iterable[str], keytab: Path | None = None) -> None:
        self.realms = frozenset(realms)
        if not self.realms:
            raise ValueError("Negotiate needs at least one accepted Kerberos realm")
        if keytab is not None:
            if not keytab.is_file():
                raise ValueError(f"keytab {keytab} does not exist")
            os.environ["KRB5_KTNAME"] = f"FILE:{keytab.resolve()}"

    def accept(self, header: str) -> Principal:
        token = token_of(header)
        if token is None:
            raise Refused("malformed", "not a Negotiate header")
        try:
            ctx = spnego.server(service="HTTP", protocol="negotiate")
            ctx.step(token)
        except SpnegoError as exc:
            raise Refused("rejected", _one_line(exc)) from None
        except Exception as exc:  # gssapi raises its own errors for hostile tokens
            raise Refused("rejected", f"{type(exc).__name__}: {_one_line(exc)}") from None
        if not ctx.complete:
            raise Refused("unsupported", "the client did not offer Kerberos (NTLM?)")
        if ctx.negotiated_protocol != "kerberos":
            raise Refused("unsupported", f"{ctx.negotiated_protocol} is not accepted")
        name = ctx.client_principal or ""
        user, realm = split_principal(name)
        if realm not in self.realms:
            raise Refused("wrong-realm", f"{name!r}: realm {realm!r} is not accepted")
        if not user or "/" in user or "\\" in user:
            raise Refused("not-a-user", f"{name!r} is not a person's principal")
        return Principal(name, user, realm)

    async def accept_async(self, header: str) -> Principal:
        return await asyncio.to_thread(self.accept, header)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]

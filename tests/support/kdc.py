"""pytest plugin: a throwaway MIT Kerberos realm (Debian's krb5-kdc, driven by k5test).

The realm ``EXAMPLE.TEST`` lives in a temp dir with its KDC on loopback ports
``portbase … portbase+9``; the base is searched from 61000 upwards in steps of 10 until
every port of the block is free, so parallel realms (or other programs) do not collide.
The gateway's service principals ``HTTP/127.0.0.1`` and ``HTTP/localhost`` (which one a
client asks for depends on its name canonicalisation) are in ``realm.keytab``; the user
``user@EXAMPLE.TEST`` has a ticket in ``realm.env["KRB5CCNAME"]``. The KDC is always
stopped (an abrupt exit would leave ``krb5kdc`` running).

Fixture ``kdc`` (module scope: a realm takes 0.6–2 s): a ``Kerberos`` with ``env`` (the
variables a client and the server need: KRB5_CONFIG, KRB5CCNAME, KRB5_KTNAME),
``keytab``, ``add_user(name)`` (a principal with a ticket in its own cache).
Without krb5-kdc the fixture skips, unless ``CI=true``: then it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REALM = "EXAMPLE.TEST"
PORT_FIRST, PORT_LAST = 61000, 64990


def _block_free(base: int) -> bool:
    for port in range(base, base + 10):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    return False
    return True


def free_portbase() -> int:
    start = PORT_FIRST + (os.getpid() % 200) * 10  # spread parallel sessions
    for base in [*range(start, PORT_LAST, 10), *range(PORT_FIRST, start, 10)]:
        if _block_free(base):
            return base
    raise RuntimeError("no free block of 10 ports for the KDC")


@dataclass
class Kerberos:
    realm: Any  # k5test.K5Realm
    ccaches: Path

    @property
    def name(self) -> str:
        return str(self.realm.realm)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.realm.env)

    @property
    def keytab(self) -> str:
        return str(self.realm.keytab)

    def add_user(self, name: str, password: str = "pw-secret", lifetime: str = "") -> str:  # noqa: S107
        """A principal ``name@REALM`` with a fresh ticket; returns its credential cache."""
        principal = f"{name}@{self.name}"
        self.realm.addprinc(principal, password)
        ccache = str(self.ccaches / f"{name}.cc")
        flags = ["-c", ccache] + (["-l", lifetime] if lifetime else [])
        self.realm.kinit(principal, password, flags=flags)
        return ccache

    def client_env(self, ccache: str) -> dict[str, str]:
        """The environment of a client holding the ticket in ``ccache``."""
        env = {k: v for k, v in self.env.items() if k != "KRB5_KTNAME"}
        env["KRB5CCNAME"] = ccache
        return env


@contextlib.contextmanager
def kerberos_realm() -> Iterator[Kerberos]:
    """A running realm with the gateway's keytab (the fixture's, for benchmarks too)."""
    from k5test import K5Realm

    realm = K5Realm(
        realm=REALM,
        portbase=free_portbase(),
        krb5_conf={"libdefaults": {"rdns": "false", "dns_canonicalize_hostname": "false"}},
        start_kadmind=False,
    )
    try:
        for spn in ("HTTP/127.0.0.1", "HTTP/localhost"):
            realm.addprinc(f"{spn}@{REALM}")
            realm.extract_keytab(f"{spn}@{REALM}", realm.keytab)
        ccaches = Path(realm.tmpdir) / "ccaches"
        ccaches.mkdir()
        yield Kerberos(realm, ccaches)
    finally:
        realm.stop()


def kdc_installed() -> bool:
    return bool(shutil.which("krb5kdc")) or os.path.exists("/usr/sbin/krb5kdc")


@pytest.fixture(scope="module")
def kdc() -> Iterator[Kerberos]:
    if not kdc_installed():
        message = "MIT Kerberos KDC (krb5-kdc) not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; ./scripts/test installs it")
        pytest.skip(message)
    with kerberos_realm() as realm:
        yield realm

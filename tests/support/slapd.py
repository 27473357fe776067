"""pytest plugin: a private OpenLDAP server (Debian's ``slapd``) per test, in a temp dir.

The server runs in the foreground (``-d 0``) on a free loopback port with its own
``slapd.conf`` (core, cosine, nis and inetorgperson schemas, an mdb database, the
``memberof`` overlay) and never reads the system's ``/etc/ldap`` database. It starts in
about a tenth of a second; ``stop()`` and ``start()`` again keep the data (the directory
"goes away" and comes back). Nested groups are resolved by Sargs on the client side
(``(member=<dn>)`` searches), as against any LDAP server that is not Active Directory.

Fixture ``slapd``: a running ``Slapd`` with the suffix ``dc=example,dc=test`` and
``add_user`` / ``add_group`` helpers that write through ``ldapadd``/``ldapmodify`` (the
same tools an administrator uses). Without slapd the fixture skips, unless ``CI=true``:
then it fails (``./scripts/test`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "admin-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SLAPD = "/usr/sbin/slapd"

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
database mdb
maxsize 104857600
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/db
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Slapd:
    directory: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    _uid: int = 10000

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def configure(self) -> None:
        (self.directory / "db").mkdir(parents=True, exist_ok=True)
        conf = self.directory / "slapd.conf"
        conf.write_text(
            _CONF.format(dir=self.directory, suffix=SUFFIX, rootdn=ROOT_DN, rootpw=ROOT_PW)
        )
        subprocess.run(
            ["slaptest", "-u", "-f", str(conf)], check=True, capture_output=True, timeout=30
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SLAPD, "-h", f"{self.url}/", "-f", str(self.directory / "slapd.conf"), "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    # -- data, through the administrator's tools -------------------------------------------

    def ldif(self, text: str, tool: str = "ldapadd") -> None:
        subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
            input=text.encode(), check=True, capture_output=True, timeout=30,
        )

    def add_base(self) -> None:
        self.ldif(
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n"
            f"dc: example\n\ndn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n"
        )

    def add_user(self, uid: str, *, gid: int = 5000, extra: Iterable[str] = ()) -> str:
        """A person (inetOrgPerson + posixAccount + shadowAccount); returns its DN."""
        self._uid += 1
        dn = f"uid={uid},{PEOPLE}"
        lines = [
            f"dn: {dn}", "objectClass: inetOrgPerson", "objectClass: posixAccount",
            "objectClass: shadowAccount", f"uid: {uid}", f"cn: {uid}", f"sn: {uid}",
            f"uidNumber: {self._uid}", f"gidNumber: {gid}", f"homeDirectory: /home/{uid}",
            *extra,
        ]
        self.ldif("\n".join(lines) + "\n")
        return dn

    def add_group(self, cn: str, members: Iterable[str]) -> str:
        """A groupOfNames (members are DNs of people or groups); returns its DN."""
        dn = f"cn={cn},{GROUPS}"
        lines = [f"dn: {dn}", "objectClass: groupOfNames", f"cn: {cn}"]
        lines += [f"member: {m}" for m in members]
        self.ldif("\n".join(lines) + "\n")
        return dn

    def add_posix_group(self, cn: str, gid: int, member_uids: Iterable[str] = ()) -> str:
        """A posixGroup: the primary group of accounts whose gidNumber is ``gid``."""
        dn = f"cn={cn},{GROUPS}"
        lines = [f"dn: {dn}", "objectClass: posixGroup", f"cn: {cn}", f"gidNumber: {gid}"]
        lines += [f"memberUid: {u}" for u in member_uids]
        self.ldif("\n".join(lines) + "\n")
        return dn

    def modify(self, dn: str, *changes: str) -> None:
        """``changes``: LDIF change lines, e.g. ``"add: member", "member: uid=…"``."""
        self.ldif(f"dn: {dn}\nchangetype: modify\n" + "\n".join(changes) + "\n", "ldapmodify")


def slapd_installed() -> bool:
    return bool(os.path.exists(SLAPD) and shutil.which("ldapadd") and shutil.which("slaptest"))


@contextlib.contextmanager
def running_slapd() -> Iterator[Slapd]:
    """A running slapd with the base entries (the fixture's, for benchmarks too)."""
    server = Slapd(Path(tempfile.mkdtemp(prefix="sargs-slapd-")))
    try:
        server.configure()
        server.start()
        server.add_base()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def slapd() -> Iterator[Slapd]:
    if not slapd_installed():
        message = "OpenLDAP (slapd, ldap-utils) not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; ./scripts/test installs it")
        pytest.skip(message)
    with running_slapd() as server:
        yield server

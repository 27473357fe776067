"""pytest plugin: Debian's PostgreSQL server for the test session, a database per test.

The server starts once per session in a temp dir on a free loopback port (``initdb`` and
``pg_ctl`` from PATH or /usr/lib/postgresql/*/bin; as root they run as the ``postgres``
user). Each test gets a fresh database, copied (``CREATE DATABASE … TEMPLATE``) from one
that is already migrated, which takes a few milliseconds.

Fixtures:

* ``postgres_server`` (session): ``.url(db)``, ``.create_database(template=…)``.
* ``postgres_url``: an empty database of its own (for migration tests).
* ``store_url``: parametrized ``sqlite`` (a file in tmp_path) and ``postgresql`` (a
  migrated database of its own): every store test runs on both.

Without PostgreSQL the ``postgresql`` cases skip, unless ``CI=true``: then they fail.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    port: int
    host: str = "127.0.0.1"
    user: str = "test"
    _names: Iterator[int] = field(default_factory=itertools.count)
    _template: str | None = None

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        )

    def create_database(self, template: str | None = None) -> str:
        name = f"t{next(self._names)}"
        sql = f'CREATE DATABASE "{name}"' + (
            f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        )
        with self._admin() as conn:
            conn.execute(sql.encode())
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def migrated_template(self) -> str:
        """A database at the newest schema, made once, to copy."""
        if self._template is None:
            from proxy.store.db import upgrade

            name = self.create_database()
            upgrade(self.url(name))
            self._template = name
        return self._template


def _run(cmd: list[str], as_postgres: bool) -> None:
    if as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        message = "PostgreSQL server not installed (initdb/pg_ctl not found)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; ./scripts/test installs it")
        pytest.skip(message)
    as_postgres = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="sargs-pg-"))
    data = base / "data"
    if as_postgres:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    try:
        _run(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                "test",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            as_postgres,
        )
        _run(
            [
                pg_ctl,
                "-D",
                str(data),
                "-w",
                "-l",
                str(base / "log"),
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                "start",
            ],
            as_postgres,
        )
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text(errors="replace") if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}{log}")
    try:
        yield PostgresServer(port)
    finally:
        try:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], as_postgres)
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty PostgreSQL database of this test's own."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store database of this test's own: SQLite (empty) or PostgreSQL (migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sargs.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(template=server.migrated_template())
    yield server.url(name)
    server.drop_database(name)

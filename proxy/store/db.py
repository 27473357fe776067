"""Opening the store: engine, SQLite pragmas, migrations, and the two kinds of transaction.

Every public store function is one transaction, run synchronously: call them from
asyncio code with ``await asyncio.to_thread(fn, store, ...)``.

* ``store.read()`` — a plain transaction (SQLite: ``BEGIN``, readers never wait on
  writers in WAL mode).
* ``store.write()`` — a writing transaction. On SQLite it starts with ``BEGIN IMMEDIATE``
  so writers queue on the database lock (up to ``busy_timeout``) instead of failing half
  way; on PostgreSQL writers serialize where they must by row locks (``SELECT … FOR
  UPDATE`` on the audit chain head, conditional ``UPDATE`` of a pending request).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from argon2 import PasswordHasher
from sqlalchemy.engine import URL, Connection, Engine, make_url

from proxy.store import auditkeys
from proxy.store.auditkeys import KeyRing

if TYPE_CHECKING:
    from proxy.settings import Settings

log = logging.getLogger("sargs.store")

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the database lock before giving up."""

_MIGRATION_LOCK = 0x5A_A6_5A_A6
"""PostgreSQL advisory lock id held while migrating (several nodes may start at once)."""


@dataclass(eq=False)
class Store:
    """An open store. Create it with ``open_store``; share one per process; ``close()`` it
    (or use it as a context manager)."""

    engine: Engine
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    audit_key_file: Path | None = None
    """Where the audit chain's keys live (``auditkeys.py``); made at first use."""
    audit_key_env: str = field(default="", repr=False)
    """``SARGS_AUDIT_KEY``: when set, the current audit key."""
    _keys: KeyRing | None = field(default=None, repr=False)

    @property
    def audit_keys(self) -> KeyRing:
        """The audit chain's keys (read, or generated, on first use)."""
        if self._keys is None:
            self._keys = auditkeys.load(self.audit_key_file, self.audit_key_env)
        return self._keys

    def reload_audit_keys(self) -> None:
        """Read the key file again (after ``sargs audit rotate-key``)."""
        self._keys = None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def url(self) -> URL:
        return self.engine.url

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reading (committed at the end, rolled back on error)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes (SQLite: ``BEGIN IMMEDIATE``)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(sargs_write=True, sargs_store=self)
            with conn.begin():
                yield conn

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sqlite_events(engine: Engine) -> None:
    # pysqlite's own transaction handling emits BEGIN lazily and never BEGIN IMMEDIATE;
    # switch it off and begin ourselves (SQLAlchemy's documented recipe).
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")  # an acknowledged request survives power loss
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("sargs_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_engine(url: str | URL) -> Engine:
    """An engine for ``url`` with the store's settings (not migrated; see ``open_store``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise ValueError("the store needs a SQLite file, not an in-memory database")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=8,
            max_overflow=8,
            pool_timeout=60,
        )
        _sqlite_events(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(
            parsed, pool_size=8, max_overflow=8, pool_timeout=60, pool_pre_ping=True
        )
    raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or "
                     "postgresql+psycopg")


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini on disk)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("proxy.store") / "migrations"))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Bring the schema up to ``revision``. Safe when several nodes start at once."""
    engine = (create_engine(engine_or_url) if isinstance(engine_or_url, str)
              else engine_or_url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(sargs_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                                 {"k": _MIGRATION_LOCK})
                command.upgrade(alembic_config(conn), revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def open_store(url: str | URL, *, migrate: bool = True,
               hasher: PasswordHasher | None = None, audit_key_file: Path | None = None,
               audit_key: str = "") -> Store:
    """Open (and by default migrate) the store at ``url``.

    ``url``: ``sqlite:///path/to/sargs.db`` (embedded default) or
    ``postgresql+psycopg://user:password@host/db`` (several service nodes). ``hasher``:
    argon2 parameters for new password hashes (default: argon2-cffi's recommended ones).
    ``audit_key_file`` / ``audit_key``: the audit chain's keys (``auditkeys.py``); the key
    file defaults, for SQLite, to ``audit.keys`` beside the database file (the var dir);
    a PostgreSQL store needs one of the two (the service passes ``VAR_DIR/audit.keys``).
    """
    engine = create_engine(url)
    if migrate:
        upgrade(engine)
    if audit_key_file is None and engine.dialect.name == "sqlite":
        audit_key_file = Path(engine.url.database or "").resolve().parent / "audit.keys"
    return Store(engine, hasher or PasswordHasher(), audit_key_file, audit_key)


def open_configured(settings: Settings, *, migrate: bool = True,
                    hasher: PasswordHasher | None = None) -> Store:
    """The store ``settings`` name, with its audit keys (``audit_key_file`` / ``audit_key``)."""
    return open_store(settings.database, migrate=migrate, hasher=hasher,
                      audit_key_file=settings.audit_keys_path,
                      audit_key=settings.audit_key.get_secret_value())


def keys_of(conn: Connection) -> KeyRing:
    """The audit keys of the store whose ``write()`` opened ``conn``."""
    store = conn.get_execution_options().get("sargs_store")
    if not isinstance(store, Store):
        raise RuntimeError("audit entries are appended inside store.write() only")
    return store.audit_keys

"""Opening and migrating the store on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from proxy.store import open_store
from proxy.store.db import create_engine, upgrade
from proxy.store.schema import metadata


def test_open_migrates_and_reopens(store_url: str) -> None:
    store = open_store(store_url)
    try:
        with store.read() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            assert version == "0004"
    finally:
        store.close()
    open_store(store_url).close()  # a second start finds nothing to do


def test_migrations_match_the_tables(store_url: str) -> None:
    upgrade(store_url)
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_sqlite_pragmas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path / 'x' / 'sargs.db'}")
    try:
        with store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_empty_postgres_database_is_migrated(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        with store.read() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"users", "requests", "grants", "audit_log", "audit_head", "counters",
                "events", "sessions", "allowances"} <= tables
    finally:
        store.close()

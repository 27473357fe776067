"""Alembic migrations of the store, run in code by ``proxy.store.db.upgrade``."""

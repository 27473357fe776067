"""Alembic environment: migrations run on the connection ``proxy.store.db`` hands over.

Run by hand (rarely needed): ``python -c "from proxy.store.db import upgrade; upgrade(URL)"``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from proxy.store.db import create_engine
from proxy.store.schema import metadata


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        render_as_batch=conn.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    conn = context.config.attributes.get("connection")
    if isinstance(conn, Connection):
        _run(conn)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
main()

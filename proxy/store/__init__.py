"""Persistence: users, access requests, grants, the audit log (SQLite or PostgreSQL).

Open it once per process with ``open_store(url)``; the modules ``users``, ``requests``,
``grants``, ``audit`` and ``events`` hold the functions (each one transaction, sync: call
them from asyncio code in a thread). See docs/storage.md.
"""

from proxy.store.db import Store, open_store, upgrade
from proxy.store.errors import (
    AlreadyDecided,
    AlreadyExists,
    InvalidInput,
    NotFound,
    SelfDecision,
    StoreError,
    TooManyPending,
)

__all__ = [
    "AlreadyDecided",
    "AlreadyExists",
    "InvalidInput",
    "NotFound",
    "SelfDecision",
    "Store",
    "StoreError",
    "TooManyPending",
    "open_store",
    "upgrade",
]

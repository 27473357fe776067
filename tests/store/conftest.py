from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from proxy.store.db import Store, open_store

# Cheap argon2 parameters keep tests fast; the real defaults are tested once.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    s = open_store(store_url, hasher=FAST, audit_key_file=tmp_path / "audit.keys")
    yield s
    s.close()

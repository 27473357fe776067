"""Secrets generated once into a file of the var dir (mode 0600) when none is configured.

The service's secret key, the gateway token and the metrics token each live in a file of
their own under ``VAR_DIR``, made at first start; the audit-chain keys and the review-draft
key are published the same way (``publish``). The file is written whole under a
temporary name, then linked into place (``os.link`` fails when the name exists): a
process starting at the same moment never reads a half-written secret, and whichever
process links first wins for all.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def publish(path: Path, text: str) -> None:
    """Write ``text`` to a new file ``path`` (mode 0600), whole or not at all: written and
    synced under a private name, then linked into place. When another process links its
    file first, theirs stays and this one is dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_or_create(path: Path, what: str, min_length: int = 32) -> str:
    """The secret in ``path``, made first (a random URL-safe token) when the file is missing.

    ``what`` names it in the error raised when the file holds less than ``min_length``
    characters (an emptied or truncated file is never taken as a secret)."""
    if not path.exists():
        publish(path, secrets.token_urlsafe(32) + "\n")
    value = path.read_text().strip()
    if len(value) < min_length:
        raise RuntimeError(f"{path} holds no usable {what} (delete it to make a new one)")
    return value

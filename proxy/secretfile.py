"""Secrets generated once into a file of the var dir (mode 0600) when none is configured.

The service's secret key, the gateway token and the metrics token each live in a file of
their own under ``VAR_DIR``, made at first start. The file is written whole under a
temporary name, then linked into place (``os.link`` fails when the name exists): a
process starting at the same moment never reads a half-written secret, and whichever
process links first wins for all.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create(path: Path, what: str, min_length: int = 32) -> str:
    """The secret in ``path``, made first (a random URL-safe token) when the file is missing.

    ``what`` names it in the error raised when the file holds less than ``min_length``
    characters (an emptied or truncated file is never taken as a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            temporary.unlink()
    value = path.read_text().strip()
    if len(value) < min_length:
        raise RuntimeError(f"{path} holds no usable {what} (delete it to make a new one)")
    return value

"""The audit chain's keys: kept outside the database, generated at first run, rotatable.

Each audit entry's link is HMAC-SHA256 under one of these keys; the entry records the key's
id (``key_id``), so entries made under an older key still verify after a rotation.

Where the keys live:

* a key file (``Settings.audit_key_file``, default ``VAR_DIR/audit.keys``; mode 0600,
  created at first use): one key per line as 64 hex digits, oldest first, ``#`` comments
  allowed; the **last** line is the current key. ``sargs audit rotate-key`` appends a new
  one; never delete old lines while entries made under them remain (``verify`` reports
  their entries as ``unknown-key``).
* or the environment: ``SARGS_AUDIT_KEY`` (64 hex digits) is then the current key; the
  file's keys, if there is a file, still verify older entries.

A key's id is the first 16 hex digits of SHA-256 over a fixed prefix and the key, so two
nodes that were given different keys by mistake write ids the other does not know, and
``verify`` says so instead of reporting edits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from proxy.secretfile import publish
from proxy.store.errors import StoreError

_HEX_KEY = re.compile(r"[0-9a-f]{64}")


class AuditKeyError(StoreError):
    """The audit keys cannot be read or are malformed (the message names the file)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"sargs-audit-key-id\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRing:
    keys: Mapping[str, bytes]
    """Every known key by id."""
    current: str
    """The id of the key new entries are made with."""

    def mac(self, kid: str, data: bytes) -> str:
        """HMAC-SHA256 (hex) of ``data`` under key ``kid`` (``KeyError`` if unknown)."""
        return hmac.new(self.keys[kid], data, hashlib.sha256).hexdigest()


def _parse(path: Path, text: str) -> list[bytes]:
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if not _HEX_KEY.fullmatch(line):
            raise AuditKeyError(f"{path}:{number}: not an audit key (64 hex digits expected)")
        found.append(bytes.fromhex(line))
    return found


def _create(path: Path) -> None:
    """Publish a new key file (``proxy.secretfile.publish``: whole or not at all; another
    process starting at the same moment either wins or reads this one)."""
    publish(path, "# Sargs audit-chain keys, oldest first; the last one is current.\n"
                  "# Keep every line: entries made under an old key are verified with it.\n"
                  f"{secrets.token_hex(32)}\n")


def load(path: Path | None, env_key: str = "", *, create: bool = True) -> KeyRing:
    """The key ring from ``path`` (made with one new key if missing and ``create``) and
    ``env_key`` (hex; when given it is the current key)."""
    keys: list[bytes] = []
    if path is not None:
        if create and not path.exists() and not env_key:
            _create(path)
        if path.exists():
            try:
                keys = _parse(path, path.read_text(encoding="ascii"))
            except (OSError, UnicodeDecodeError) as exc:
                raise AuditKeyError(f"{path}: cannot read the audit keys: {exc}") from None
    if env_key:
        env = env_key.strip().lower()
        if not _HEX_KEY.fullmatch(env):
            raise AuditKeyError("SARGS_AUDIT_KEY: not an audit key (64 hex digits expected)")
        keys.append(bytes.fromhex(env))
    if not keys:
        where = path if path is not None else "SARGS_AUDIT_KEY"
        raise AuditKeyError(f"{where}: no audit key (the audit chain needs one)")
    return KeyRing({key_id(k): k for k in keys}, key_id(keys[-1]))


def rotate(path: Path) -> str:
    """Append a new key to the key file (made if missing); return its id."""
    if not path.exists():
        _create(path)
        return load(path, create=False).current
    key = secrets.token_bytes(32)
    with open(path, "a", encoding="ascii") as out:
        out.write(key.hex() + "\n")
    return key_id(key)

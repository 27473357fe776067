"""The key that seals drafts sent for review: kept outside the database, made at first run.

A draft a user explicitly sends for review is the one draft Sargs stores (``reviews.py``).
It is sealed with AES-256-GCM (``cryptography``'s ``AESGCM``) under this key; the row holds
``nonce ‖ ciphertext`` and the key's id, never the key, so a copy of the database (a
backup, a replica, a stolen disk) does not reveal a draft.

Where the key lives:

* ``Settings.review_key_file`` (default ``VAR_DIR/review.key``): 64 hex digits on one line,
  ``#`` comments allowed; created with mode 0600 at first use (atomically: written under a
  private name, then linked into place, so two processes starting at once agree);
* or ``SARGS_REVIEW_KEY`` (64 hex digits): every service node of a cluster must hold the
  same key (PostgreSQL shared by several nodes), so set it there, or share the file.

Losing the key loses the pending drafts only (their reviews cannot be read: the reviewer
pages say so and the author asks again); decided reviews hold no draft anyway.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proxy.secretfile import publish
from proxy.store.errors import StoreError

_HEX_KEY = re.compile(r"[0-9a-f]{64}")
NONCE_BYTES = 12


class ReviewKeyError(StoreError):
    """The review key cannot be read, is malformed, or does not open a draft."""


def key_id(key: bytes) -> str:
    """A short id of ``key`` (stored with each sealed draft; never the key itself)."""
    return hashlib.sha256(b"sargs-review-key-id\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class ReviewKey:
    key: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return key_id(self.key)

    def seal(self, plaintext: bytes, bound_to: str) -> bytes:
        """``nonce ‖ AES-GCM(plaintext)``; ``bound_to`` (the review id) is authenticated too,
        so a sealed draft copied into another row does not open there."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        """The plaintext; ``ReviewKeyError`` if the key or the row's id does not match."""
        try:
            return AESGCM(self.key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                            bound_to.encode())
        except (InvalidTag, ValueError):
            raise ReviewKeyError("the draft does not open with this review key") from None


def _create(path: Path) -> None:
    publish(path, "# Sargs review-draft key (AES-256-GCM). Keep it out of backups of the "
                  f"database.\n{secrets.token_hex(32)}\n")


def _parse(where: str, text: str) -> bytes:
    found = [line for raw in text.splitlines()
             if (line := raw.split("#", 1)[0].strip().lower())]
    if len(found) != 1 or not _HEX_KEY.fullmatch(found[0]):
        raise ReviewKeyError(f"{where}: not a review key (one line of 64 hex digits expected)")
    return bytes.fromhex(found[0])


def load(path: Path | None, env_key: str = "", *, create: bool = True) -> ReviewKey:
    """The key from ``env_key`` when given, else from ``path`` (made if missing)."""
    if env_key:
        return ReviewKey(_parse("SARGS_REVIEW_KEY", env_key))
    if path is None:
        raise ReviewKeyError("no review key: set SARGS_REVIEW_KEY or a key file")
    if create and not path.exists():
        _create(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReviewKeyError(f"{path}: cannot read the review key: {exc}") from None
    return ReviewKey(_parse(str(path), text))

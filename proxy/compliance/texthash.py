"""The one hash of a post's text that allowances are bound to.

``text_hash(text)`` is the hex SHA-256 of the text normalised so that what a browser
shows as the same post hashes the same: Unicode NFC, line endings made ``\\n``, every run
of white space (Unicode's, line breaks included) made one space, ends stripped. Anything
else, an invisible character included, changes the hash: a changed text is a new text and
needs its own way forward (fail closed).

The service hashes (``POST /api/v1/proceed``, reviews) and the gateway hashes the text it
reads from a post; the guard in the browser hashes nothing.
"""

from __future__ import annotations

import hashlib
import unicodedata


def normalise(text: str) -> str:
    """The text as hashed."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return " ".join(text.split())


def text_hash(text: str) -> str:
    """Hex SHA-256 of ``normalise(text)`` in UTF-8 (a lone surrogate is encoded as it is,
    so two texts differing only there still differ)."""
    data = normalise(text).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()

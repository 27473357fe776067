"""Where the service may send a browser: checked the way browsers read URLs, not the way
Python's ``urlsplit`` does.

Browsers (the WHATWG URL standard) drop tabs and newlines anywhere in a URL, strip
leading and trailing control characters and spaces, and read ``\\`` as ``/`` in http(s)
URLs. So ``/\\t/evil.example/`` is ``//evil.example/`` to a browser (another host), and
``https://platform.example\\@evil.example/`` is a URL on ``evil.example``, although
``urlsplit`` reads the host as ``platform.example``. Rather than re-implement that parser,
these checks accept only a plain, unambiguous subset and refuse everything else:

* ``safe_path``: a path on this service: printable ASCII only (no controls, spaces or
  backslashes), starting with one ``/`` and not two.
* ``safe_platform_url``: ``http(s)://HOST[:PORT]`` followed by nothing or by ``/``, ``?``
  or ``#`` and printable ASCII without backslashes; HOST letters, digits, dots and
  hyphens only (no user-info, no ``@`` before the path, no IP literal) and on a catalog
  platform.
"""

from __future__ import annotations

import re
from typing import Protocol

MAX_LENGTH = 2000

_PRINTABLE = re.compile(r"[\x21-\x7e]*")
_PLATFORM_URL = re.compile(
    r"https?://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::[0-9]{1,5})?"
    r"(?:[/?#].*)?", re.ASCII | re.DOTALL)


class Catalog(Protocol):
    def match(self, host: str) -> object | None: ...


def _plain(value: str) -> bool:
    return (0 < len(value) <= MAX_LENGTH and _PRINTABLE.fullmatch(value) is not None
            and "\\" not in value)


def safe_path(value: str | None) -> str | None:
    """``value`` if it is a path on this service a browser reads the same way, else None."""
    if value is None or not _plain(value):
        return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    return value


def safe_platform_url(catalog: Catalog, value: str | None) -> str | None:
    """``value`` if it is an http(s) URL on a catalog platform that a browser reads the same
    way, else None."""
    if value is None or not _plain(value):
        return None
    found = _PLATFORM_URL.fullmatch(value)
    if found is None:
        return None
    host = found.group("host").lower().rstrip(".")
    return value if catalog.match(host) is not None else None

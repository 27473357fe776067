"""One canonical view of a request path, read before any path is matched.

Platforms' servers decode, collapse and strip request paths before they route them; the
gateway must see the path the way they do, or ``//api//graphql/``, ``/api/%67raphql/``,
``/x/../api/graphql/;a=b`` and ``/API/GraphQL`` each walk past a literal string match.

:func:`canonical_path` returns the path as a server routes it, lower-cased (case is folded
on both sides of every match: a false "this is a posting endpoint" only costs a check,
a false "it is not" lets a post through), or ``None`` when the path cannot be read with
certainty (an encoded ``/``, ``\\`` or ``%``, a NUL or control character, an invalid or
over-long UTF-8 sequence, a ``%`` not followed by two hex digits). Callers refuse unsafe
requests whose path is ``None`` on platform hosts (fail closed).

Steps, in order: cut the query; percent-decode every octet (the decoded bytes must be
valid, shortest-form UTF-8: Python's strict decoder refuses over-long forms); cut
``;parameters`` from every segment; drop empty segments (repeated slashes) and ``.``; let
``..`` remove the segment before it (never above the root); drop the trailing slash.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
"""A ``%`` that does not start a percent-encoding."""
_UNREADABLE = re.compile(r"%(?:2[Ff]|5[Cc]|25|00)")
"""Encodings servers disagree about: an encoded ``/``, ``\\``, ``%`` (double encoding)
and NUL."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that do not change anything on a server; every other method is unsafe (a post,
an edit, a deletion, a like...)."""


def is_unsafe(method: str) -> bool:
    """Whether a method may change something on the server (anything but GET/HEAD/OPTIONS)."""
    return method.upper() not in SAFE_METHODS


def canonical_path(path: str) -> str | None:
    """The path a server routes (see the module docs), or None when it cannot be read."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or _PERCENT.search(path) or _UNREADABLE.search(path):
        return None
    if "\\" in path:
        return None
    try:
        decoded = unquote_to_bytes(path).decode("utf-8", "strict")
    except UnicodeDecodeError:
        return None
    if _CONTROL.search(decoded):
        return None
    out: list[str] = []
    for raw in decoded.split("/"):
        segment = raw.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return ("/" + "/".join(out)).lower()

"""Where a post's text sits in a request: pure extraction from bodies and query strings.

A location (from the platform catalog) is one or more steps chained with ``|``; the first
step reads the request, each further step reads the string the previous one found (a form
field that holds JSON, say):

- ``json:a.b[0].c`` — a JSON body; ``*`` or ``[*]`` takes every item of a list or mapping
- ``form:field`` — an ``application/x-www-form-urlencoded`` body
- ``multipart:field`` — a text field of a ``multipart/form-data`` body (files are skipped)
- ``query:name`` — the URL's query string

Every value found is returned (a field may repeat, a wildcard may match many); a location
that is absent gives nothing. Nothing here logs or keeps the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")
_MEDIA_KEYS = frozenset(
    {"media_ids", "media_entities", "media_attachments", "attachments", "media", "media_id"}
)


class Request(NamedTuple):
    """What extraction needs of an HTTP request (body already content-decoded)."""

    content: bytes
    content_type: str
    query: str
    """The raw query string (without ``?``)."""


class Step(NamedTuple):
    kind: str
    """``json``, ``form``, ``multipart`` or ``query``."""
    path: str


def parse_location(location: str) -> list[Step]:
    """``'form:variables|json:input.text'`` → two steps."""
    steps = []
    for part in location.split("|"):
        kind, sep, path = part.partition(":")
        if not sep or kind not in ("json", "form", "multipart", "query") or not path:
            raise ValueError(f"{part!r} is not a text location step")
        steps.append(Step(kind, path))
    return steps


def _json_path(path: str) -> list[str | int]:
    out: list[str | int] = []
    for name, index in _SEGMENT.findall(path):
        if name:
            out.append("*" if name == "*" else name)
        else:
            out.append("*" if index == "*" else int(index))
    return out


def json_values(document: Any, path: str) -> list[Any]:
    """Values at a dotted path in a parsed JSON document (``*`` fans out)."""
    current = [document]
    for segment in _json_path(path):
        following: list[Any] = []
        for value in current:
            if segment == "*":
                if isinstance(value, list):
                    following.extend(value)
                elif isinstance(value, dict):
                    following.extend(value.values())
            elif isinstance(segment, int):
                if isinstance(value, list) and -len(value) <= segment < len(value):
                    following.append(value[segment])
            elif isinstance(value, dict) and segment in value:
                following.append(value[segment])
        current = following
    return current


def _load_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _form_values(text: str, name: str) -> list[str]:
    return [v for k, v in parse_qsl(text, keep_blank_values=True) if k == name]


def _decode(content: bytes) -> str:
    return content.decode("utf-8", "replace")


def multipart_parts(content: bytes, content_type: str) -> list[Message]:
    """The parts of a ``multipart/form-data`` body (empty when it is not one)."""
    if "multipart/" not in content_type.lower():
        return []
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + content)
    if not message.is_multipart():
        return []
    parts = message.get_payload()
    return [p for p in parts if isinstance(p, Message)] if isinstance(parts, list) else []


def _part_name(part: Message) -> str | None:
    name = part.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None


def _is_file(part: Message) -> bool:
    return part.get_param("filename", header="content-disposition") is not None


def _multipart_values(request: Request, name: str) -> list[str]:
    out = []
    for part in multipart_parts(request.content, request.content_type):
        if _part_name(part) == name and not _is_file(part):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    out.append(payload.decode(charset, "replace"))
                except LookupError:
                    out.append(payload.decode("utf-8", "replace"))
    return out


def _first(request: Request, step: Step) -> list[str]:
    if step.kind == "query":
        return _form_values(request.query, step.path)
    if step.kind == "form":
        if "multipart/" in request.content_type.lower():
            return []
        return _form_values(_decode(request.content), step.path)
    if step.kind == "multipart":
        return _multipart_values(request, step.path)
    document = _load_json(request.content)
    return _strings(json_values(document, step.path)) if document is not None else []


def _next(value: str, step: Step) -> list[str]:
    if step.kind in ("form", "query"):
        return _form_values(value, step.path)
    if step.kind == "json":
        document = _load_json(value)
        return _strings(json_values(document, step.path)) if document is not None else []
    return []  # a multipart body inside a field has no boundary to go by


def _strings(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def texts(request: Request, location: str) -> list[str]:
    """Every text at one location of a request (empty list: the location is absent)."""
    steps = parse_location(location)
    found = _first(request, steps[0])
    for step in steps[1:]:
        found = [inner for value in found for inner in _next(value, step)]
    return found


def all_texts(request: Request, locations: Iterable[str]) -> list[str]:
    """The non-empty texts at every location present, in order, duplicates dropped."""
    seen: set[str] = set()
    out = []
    for location in locations:
        for text in texts(request, location):
            if text.strip() and text not in seen:
                seen.add(text)
                out.append(text)
    return out


def _media_in_json(value: Any, depth: int = 0) -> bool:
    if depth > 12:
        return False
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _MEDIA_KEYS and item not in (None, "", [], {}):
                return True
            if _media_in_json(item, depth + 1):
                return True
    elif isinstance(value, list):
        return any(_media_in_json(item, depth + 1) for item in value[:100])
    return False


def _kind(content_type: str) -> str:
    main = content_type.split("/", 1)[0].lower()
    return main if main in ("image", "video") else "file"


def attachments(request: Request) -> list[str]:
    """Kinds of media a post carries: ``image``, ``video`` or ``file``, one per item seen.

    Multipart file parts are classified by their content type. JSON bodies that name media
    (``media_ids``, ``media_entities``, ``attachments`` …, non-empty) count as one
    ``image``: platforms upload media first and refer to it by id, so the kind is unknown
    and the image reminders (minors' consent, copyright) are the ones that apply.
    """
    kinds = [
        _kind(part.get_content_type())
        for part in multipart_parts(request.content, request.content_type)
        if _is_file(part)
    ]
    if kinds:
        return kinds
    documents: list[Any] = []
    if "json" in request.content_type.lower() or request.content[:1] in (b"{", b"["):
        documents.append(_load_json(request.content))
    elif "form-urlencoded" in request.content_type.lower():
        # Form fields that hold JSON (Facebook's and Pinterest's ``variables``/``data``).
        documents.extend(
            _load_json(v) for _, v in parse_qsl(_decode(request.content)) if v[:1] in ("{", "[")
        )
    if any(d is not None and _media_in_json(d) for d in documents):
        return ["image"]
    return []


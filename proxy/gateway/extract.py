"""Where a post's text sits in a request: pure extraction from bodies and query strings.

A location (from the platform catalog) is one or more steps chained with ``|``; the first
step reads the request, each further step reads the string the previous one found (a form
field that holds JSON, say):

- ``json:a.b[0].c`` — a JSON body; ``*`` or ``[*]`` takes every item of a list or mapping
- ``form:field`` — an ``application/x-www-form-urlencoded`` body
- ``multipart:field`` — a text field of a ``multipart/form-data`` body (files are skipped)
- ``query:name`` — the URL's query string

Every parameter source is read (:func:`parse`): a ``form:``/``query:``/``multipart:``
name is looked up in the query string, a form or multipart body and a JSON body's top
level alike, and a plain ``json:`` name in form fields too (servers merge them). Every
value found is returned (a field may repeat, a wildcard may match many; objects and lists
at a location are read through); a location that is absent gives nothing. A body that
cannot be read (broken JSON or multipart, duplicate JSON keys, bytes that are not UTF-8,
a body type that is none of these, a field that should hold JSON but does not) raises
:class:`Unreadable`: the caller refuses the post. Nothing here logs or keeps the text.
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


class Unreadable(ValueError):
    """A body or value that must be read but cannot be (the post is refused, fail closed)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (servers disagree on which duplicate wins)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Unreadable(f"JSON key {key!r} given twice")
        out[key] = value
    return out


def _load_json(text: str | bytes) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, Unreadable):
            raise
        raise Unreadable("not JSON") from None


def _form_values(text: str, name: str) -> list[str]:
    return [v for k, v in _form_pairs(text) if k == name]


def _form_pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Unreadable("form field not UTF-8") from None


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise Unreadable("body not UTF-8") from None


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


def _multipart_fields(request: Request) -> list[tuple[str, str]]:
    """The text fields of a multipart body; Unreadable when it is broken."""
    head = f"Content-Type: {request.content_type}\r\nMIME-Version: 1.0\r\n\r\n"
    raw = head.encode("latin-1", "replace") + request.content
    message = BytesParser(policy=HTTP).parsebytes(raw)
    parts = message.get_payload() if message.is_multipart() else None
    if not isinstance(parts, list) or message.defects:
        raise Unreadable("broken multipart body")
    out = []
    for part in parts:
        if not isinstance(part, Message) or part.defects:
            raise Unreadable("broken multipart part")
        name = _part_name(part)
        if name is None or _is_file(part):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            raise Unreadable("broken multipart part")
        charset = part.get_content_charset() or "utf-8"
        try:
            out.append((name, payload.decode(charset, "strict")))
        except (LookupError, UnicodeDecodeError):
            raise Unreadable(f"multipart field {name!r} not in a readable charset") from None
    return out


_ABSENT = object()


class Parsed(NamedTuple):
    """Every parameter source of a request, read once: query, form or multipart, JSON."""

    fields: list[tuple[str, str]]
    """Named parameters from the query string, a form body and multipart text fields (many
    servers merge them: a text may be sent in any of them)."""
    document: Any
    """The JSON body (``_ABSENT`` when there is none)."""


def parse(request: Request) -> Parsed:
    """Read every parameter source of a request; Unreadable when a body cannot be read.

    Bodies are read by their declared type (form, multipart, JSON or ``+json``); a body
    that starts like JSON is read as JSON whatever its type says (``text/plain`` from
    ``fetch``); an empty body has only the query. Any other body is unreadable.
    """
    fields = _form_pairs(request.query)
    document: Any = _ABSENT
    ctype = request.content_type.split(";", 1)[0].strip().lower()
    content = request.content
    if not content.strip():
        return Parsed(fields, document)
    if ctype == "application/x-www-form-urlencoded":
        fields = fields + _form_pairs(_decode(content))
    elif ctype == "multipart/form-data":
        fields = fields + _multipart_fields(request)
    elif ctype.endswith(("/json", "+json")) or content.lstrip()[:1] in (b"{", b"["):
        document = _load_json(_decode(content))
    else:
        raise Unreadable(f"cannot read a {ctype or 'untyped'} body")
    return Parsed(fields, document)


def _plain_name(path: str) -> bool:
    return bool(path) and not any(c in path for c in ".[]*")


def _first(parsed: Parsed, step: Step) -> list[Any]:
    """Values of the first step from every source that may carry them."""
    found: list[Any] = []
    if step.kind == "json":
        if parsed.document is not _ABSENT:
            found.extend(json_values(parsed.document, step.path))
        if _plain_name(step.path):
            found.extend(v for k, v in parsed.fields if k == step.path)
        return found
    found.extend(v for k, v in parsed.fields if k == step.path)
    if isinstance(parsed.document, dict) and step.path in parsed.document:
        found.append(parsed.document[step.path])
    return found


def _next(value: Any, step: Step) -> list[Any]:
    if not isinstance(value, str):
        if step.kind == "json":  # an already-parsed JSON value
            return json_values(value, step.path)
        raise Unreadable("a form field holds no text")
    if step.kind in ("form", "query"):
        return _form_values(value, step.path)
    if step.kind == "json":
        return json_values(_load_json(value), step.path)
    raise Unreadable("a multipart body inside a field cannot be read")


def _strings(values: Iterable[Any], depth: int = 0) -> list[str]:
    """Every string at a text location; lists and objects there are read through."""
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int | float):
            out.append(str(value))
        elif depth > 16:
            raise Unreadable("text nested too deep")
        elif isinstance(value, dict):
            out.extend(_strings(value.values(), depth + 1))
        elif isinstance(value, list):
            out.extend(_strings(value, depth + 1))
    return out


def located(parsed: Parsed, location: str) -> list[str]:
    """Every text at one location of a parsed request (empty: the location is absent)."""
    steps = parse_location(location)
    found = _first(parsed, steps[0])
    for step in steps[1:]:
        found = [inner for value in found for inner in _next(value, step)]
    return _strings(found)


def texts(request: Request, location: str) -> list[str]:
    """Every text at one location of a request; Unreadable when the body cannot be read."""
    return located(parse(request), location)


def all_texts(request: Request, locations: Iterable[str]) -> list[str]:
    """The non-empty texts at every location present, in order, duplicates dropped."""
    parsed = parse(request)
    seen: set[str] = set()
    out = []
    for location in locations:
        for text in located(parsed, location):
            if text.strip() and text not in seen:
                seen.add(text)
                out.append(text)
    return out


_OPERATION_FIELDS = ("operationName", "fb_api_req_friendly_name")


def operation_name(request: Request) -> str | None:
    """The GraphQL operation a request names (JSON or query ``operationName``, Facebook's
    form ``fb_api_req_friendly_name``); None when absent, unreadable or ambiguous."""
    try:
        parsed = parse(request)
    except Unreadable:
        return None
    names = {v for k, v in parsed.fields if k in _OPERATION_FIELDS}
    if isinstance(parsed.document, dict):
        value = parsed.document.get("operationName")
        if isinstance(value, str):
            names.add(value)
    return names.pop() if len(names) == 1 else None


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
    try:
        parsed = parse(request)
        if parsed.document is not _ABSENT:
            documents.append(parsed.document)
        # Form fields that hold JSON (Facebook's and Pinterest's ``variables``/``data``).
        documents.extend(_load_json(v) for _, v in parsed.fields if v[:1] in ("{", "["))
    except Unreadable:
        return []  # the post check refuses what it cannot read
    if any(d is not None and _media_in_json(d) for d in documents):
        return ["image"]
    return []



def carries_text(request: Request, locations: Iterable[str]) -> bool:
    """Whether a request has text at any of a posting endpoint's locations; a body that
    cannot be read counts as carrying text (it is checked, and refused, as a post)."""
    try:
        return bool(all_texts(request, locations))
    except Unreadable:
        return True

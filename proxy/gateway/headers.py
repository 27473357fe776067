"""The request headers the access add-on reads, found in one pass over the raw fields.

mitmproxy's ``Headers.get``/``get_all`` decode and compare every field per call; the
access add-on reads six headers of every request (and removes the proxy login), so one
pass over ``request.headers.fields`` costs a third of what six lookups do — measured:
the gateway's allowed page at 89 % of bare mitmproxy with lookups, see the benchmark.
"""

from __future__ import annotations

from typing import NamedTuple

Fields = tuple[tuple[bytes, bytes], ...]


class RequestHeaders(NamedTuple):
    """The first value of each header the access decision reads (and every Host)."""

    proxy_authorization: str | None
    accept_language: str | None
    accept: str
    sec_fetch_dest: str
    requested_with: str
    hosts: tuple[str, ...]
    """Every ``Host`` header, in order (a request may carry several)."""


_WANTED = {
    b"proxy-authorization": 0,
    b"accept-language": 1,
    b"accept": 2,
    b"sec-fetch-dest": 3,
    b"x-requested-with": 4,
}


def read_headers(fields: Fields) -> tuple[RequestHeaders, Fields | None]:
    """The headers, and ``fields`` without any ``Proxy-Authorization`` when there was one
    (else None): the proxy login is ours, never forwarded upstream."""
    found: list[str | None] = [None, None, None, None, None]
    hosts: list[str] = []
    kept: list[tuple[bytes, bytes]] = []
    stripped = False
    for field in fields:
        name = field[0].lower()
        if name == b"host":
            hosts.append(field[1].decode("utf-8", "surrogateescape"))
        i = _WANTED.get(name)
        if i == 0:
            stripped = True
        else:
            kept.append(field)
        if i is not None and found[i] is None:
            found[i] = field[1].decode("utf-8", "surrogateescape")
    headers = RequestHeaders(
        found[0], found[1], found[2] or "", found[3] or "", found[4] or "", tuple(hosts)
    )
    return headers, tuple(kept) if stripped else None

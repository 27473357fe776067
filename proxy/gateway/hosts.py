"""One host per request: the names a request gives for its destination must agree.

A request names its destination several times: the ``CONNECT`` that opened the tunnel,
the TLS SNI, the ``Host`` header(s), HTTP/2's ``:authority``, an absolute request URL.
mitmproxy routes a request inside a tunnel by its ``Host``/``:authority``; a client that
opens ``CONNECT www.linkedin.com`` and then sends ``Host: www.tiktok.com`` would have the
gateway decide for one platform and connect to the other. :func:`mismatch` says when the
names disagree; the access addon refuses such requests (421 Misdirected Request).
"""

from __future__ import annotations

from collections.abc import Iterable


def _name(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def split_authority(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (IPv6 in brackets) → (name, port); None when it is not one."""
    value = value.strip()
    if value.startswith("["):
        inside, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        host, port_text = inside, rest[1:]
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    elif ":" in value:
        return None
    else:
        host, port_text = value, ""
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        return None
    if not host or any(c in host for c in "/\\@ \t"):
        return None
    return _name(host), int(port_text) if port_text else None


def mismatch(
    host: str,
    port: int,
    authorities: Iterable[str],
    tunnel: tuple[str, int] | None,
    sni: str | None,
) -> str | None:
    """Why the names of one request disagree, or None when they agree.

    ``host``/``port``: where mitmproxy will send the request; ``authorities``: every
    ``Host`` header and the ``:authority``; ``tunnel``: the ``CONNECT`` destination when the
    request came through one; ``sni``: the client's TLS server name.
    """
    if tunnel is None and not sni and all(value == host for value in authorities):
        return None  # the common plain-proxy request: Host as in the URL
    name = _name(host)
    for value in authorities:
        parsed = split_authority(value)
        if parsed is None:
            return f"unreadable Host {value!r}"
        if parsed[0] != name or (parsed[1] is not None and parsed[1] != port):
            return f"Host {value!r} is not {name}:{port}"
    if tunnel is not None and (_name(tunnel[0]) != name or tunnel[1] != port):
        return f"request for {name}:{port} in a tunnel to {tunnel[0]}:{tunnel[1]}"
    if sni and _name(sni) != name:
        return f"request for {name} on a TLS connection for {sni}"
    return None

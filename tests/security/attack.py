"""Real clients for attacking a real gateway: curl (HTTP/1.1 and HTTP/2 through the
gateway's TLS interception, paths sent as written) and a login header for aiohttp.

curl is the attacker's tool of choice here: ``--path-as-is`` sends ``/./``, ``/../``,
``//`` and percent-encodings untouched (aiohttp/yarl would normalise them first), and
``--http2`` speaks HTTP/2 inside the CONNECT tunnel, with ``:authority`` taken from a
``Host`` header given with ``-H``.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from dataclasses import dataclass

from tests.support.gateway import Gateway

PROTOCOLS = ("http1.1", "http2")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Answer:
    status: int
    """The final HTTP status; 0 when no HTTP answer came (the connection was refused)."""
    body: str
    http_version: str
    connect_status: int
    """The proxy's answer to CONNECT (0 for plain-HTTP proxy requests)."""


async def curl(
    gw: Gateway,
    url: str,
    *,
    user: tuple[str, str] | None,
    method: str = "GET",
    protocol: str = "http1.1",
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    extra: tuple[str, ...] = (),
) -> Answer:
    """One request through the gateway with curl; never follows redirects."""
    args = [
        "curl", "--silent", "--show-error", "--path-as-is", "--max-time", "20",
        "--noproxy", "", "--proxy", gw.proxy_url, "--cacert", str(gw.ca_cert),
        f"--{protocol}", "--request", method,
        "--write-out", "\n%{http_code} %{http_version} %{http_connect}",
    ]
    if user is not None:
        args += ["--proxy-user", f"{user[0]}:{user[1]}"]
    for name, value in (headers or {}).items():
        args += ["--header", f"{name}: {value}"]
    if data is not None:
        args += ["--data-binary", "@-"]
    args += [*extra, url]
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(data)
    text = out.decode("utf-8", "replace")
    body, _, tail = text.rpartition("\n")
    code, version, connect = [*tail.split(), "0", "0", "0"][:3]
    return Answer(int(code), body, version, int(connect))

"""Where the gateway may connect: never to its own network's inside, unless IT lists it.

The gateway is a proxy that staff reach from the LAN; relayed naively it becomes a way
into loopback services (the Sargs service's own API, the gateway's metrics), link-local
cloud metadata and private hosts. So before any upstream connection opens:

- the destination is read as an address the way the system resolver reads it
  (``127.1``, ``0x7f.1``, ``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``,
  ``localhost.``), or resolved; every resulting address must be public
  (:func:`forbidden_address`: loopback, private RFC 1918, unique-local, link-local,
  CGNAT 100.64/10, 0.0.0.0/8, multicast, reserved and documentation ranges are not;
  IPv4-mapped, NAT64 and 6to4 IPv6 forms are judged by the IPv4 address inside);
- the gateway's and the service's own listening addresses are never a destination;
- IT may list exceptions (``sargs_allowed_upstreams``: ``ADDRESS[/PREFIX][:PORT]``
  entries, IPv6 in brackets), e.g. an intranet proxy or, in the test suite, the local
  stand-in platforms.

The check runs in mitmproxy's ``server_connect`` hook (``access.py``), on the addresses the
name resolves to at that moment; the connection is then pinned to the address that was
checked, so a DNS answer that changes between check and connect (rebinding) cannot send
it elsewhere. Catalog hosts over TLS are the exception: they keep their name (mitmproxy
reuses connections by it), and an inside host that a rebound name led to would fail the
upstream certificate check for the platform's name before a byte of the request is sent.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import NamedTuple

from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from proxy.policy.catalog import Catalog

log = logging.getLogger("sargs.gateway")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LEGACY_V4 = frozenset("0123456789abcdefxABCDEFX.")


def _inner_v4(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 IPv6 address (else ``ip``)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


@functools.lru_cache(maxsize=4096)
def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when the system resolver would read it as one.

    Accepts what ``inet_aton`` accepts (``127.1``, ``0x7f.0.0.1``, ``2130706433``,
    ``0177.0.0.1``), IPv6 with or without brackets or a zone, and a trailing dot.
    """
    host = host.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and set(host) <= _LEGACY_V4 and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def forbidden_address(ip: IPAddress) -> bool:
    """Whether an address is inside (not a public internet address)."""
    ip = _inner_v4(ip)
    return not ip.is_global or ip.is_multicast


def is_local_name(host: str) -> bool:
    """Names every resolver keeps local (``localhost`` and below it)."""
    host = host.strip().rstrip(".").lower()
    return host in _LOCAL_NAMES or host.endswith(".localhost")


class AllowedUpstream(NamedTuple):
    """An IT-listed exception: addresses (a network) and optionally one port."""

    network: IPNetwork
    port: int | None

    def admits(self, ip: IPAddress, port: int) -> bool:
        ip = _inner_v4(ip)
        return (
            ip.version == self.network.version
            and ip in self.network
            and (self.port is None or self.port == port)
        )


def parse_allowed(entry: str) -> AllowedUpstream:
    """``10.0.0.0/8``, ``10.1.2.3:3128``, ``[fd00::1]:80``, ``[fd00::/8]`` → a rule.

    Raises ValueError naming the entry when it is not one.
    """
    text = entry.strip()
    port: int | None = None
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r}: IPv6 entries are written [ADDRESS[/PREFIX]][:PORT]")
        text, port_text = inside, rest[1:]
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
    else:
        port_text = ""
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{entry!r}: {port_text!r} is not a port")
        port = int(port_text)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{entry!r} is not an address or network (like 10.1.0.0/16:3128)"
        ) from None
    return AllowedUpstream(network, port)


class Verdict(NamedTuple):
    """Whether a destination may be reached, why not, and the address to connect to."""

    allowed: bool
    reason: str
    address: IPAddress | None = None


def judge(
    addresses: Iterable[IPAddress],
    port: int,
    allowed: Iterable[AllowedUpstream],
    own: Iterable[tuple[IPAddress, int]] = (),
) -> Verdict:
    """Judge every address a destination resolves to: all must be reachable.

    ``own``: the gateway's and the service's listening (address, port) pairs (when they
    listen on every interface, their private addresses are refused as private anyway).
    """
    addresses = list(addresses)
    if not addresses:
        return Verdict(False, "the name resolves to no address")
    rules = list(allowed)
    own_pairs = list(own)
    for ip in addresses:
        if any(rule.admits(ip, port) for rule in rules):
            continue
        for own_ip, own_port in own_pairs:
            if own_port == port and own_ip == ip:
                return Verdict(False, f"{ip} port {port} is Sargs itself")
        if forbidden_address(ip):
            return Verdict(False, f"{ip} is not a public address")
    return Verdict(True, "", addresses[0])


class DestinationGuard:
    """The access addon's part that judges upstream connections (see the module docs)."""

    def __init__(self) -> None:
        self.allowed: list[AllowedUpstream] = []
        self.own: list[tuple[IPAddress, int]] = []
        self.upstream_proxies: list[tuple[str, int]] = []
        """The institution's upstream proxies (mitmproxy's ``upstream:`` mode): connections
        go to them, and they resolve the destination, so it is judged per request."""

    def configure(
        self,
        allowed: Iterable[str],
        own: Iterable[tuple[str, int]],
        upstream_proxies: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Raises ValueError naming a bad ``allowed`` entry."""
        self.allowed = [parse_allowed(entry) for entry in allowed]
        self.own = [
            (ip, port) for host, port in own if (ip := literal_address(host)) is not None
        ]
        self.upstream_proxies = [(host.lower(), port) for host, port in upstream_proxies]

    def needs_resolving(self, host: str) -> bool:
        """Whether :meth:`refusal` must resolve ``host`` (only behind an upstream proxy)."""
        return bool(self.upstream_proxies) and literal_address(host) is None

    async def refusal(self, host: str, port: int) -> str | None:
        """Why a request's destination is refused before anything is sent, or None.

        Addresses and ``localhost`` always; a name only when an upstream proxy will resolve
        it (otherwise ``server_connect`` judges what mitmproxy is about to dial). A name
        the gateway cannot resolve is left to the upstream proxy (split-horizon DNS)."""
        why = self.literal_refusal(host, port)
        if why is not None or not self.upstream_proxies or literal_address(host) is not None:
            return why
        addresses = await self.resolve(host, port)
        if not addresses:
            return None
        verdict = judge(addresses, port, self.allowed, self.own)
        return None if verdict.allowed else verdict.reason

    def literal_refusal(self, host: str, port: int) -> str | None:
        """Why a destination written as an address (or ``localhost``) is refused, or None
        (names other than ``localhost`` are judged when the connection opens)."""
        ip = literal_address(host)
        if ip is None:
            if not is_local_name(host):
                return None
            ip = ipaddress.IPv4Address("127.0.0.1")
        verdict = judge([ip], port, self.allowed, self.own)
        return None if verdict.allowed else verdict.reason

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        ip = literal_address(host)
        if ip is not None:
            return [ip]
        if is_local_name(host):
            return [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        out: list[IPAddress] = []
        for info in infos:
            address = literal_address(str(info[4][0]))
            if address is not None and address not in out:
                out.append(address)
        return out

    async def server_connect(self, data: ServerConnectionHookData, catalog: Catalog) -> None:
        server = data.server
        if server.address is None or server.error:
            return
        host, port = server.address[0], server.address[1]
        if (host.lower(), port) in self.upstream_proxies:
            return  # IT's proxy: the destination was judged per request (``refusal``)
        addresses = await self.resolve(host, port)
        verdict = judge(addresses, port, self.allowed, self.own)
        if not verdict.allowed:
            log.warning("destination refused", extra={"event": {
                "event": "destination-refused", "host": host, "port": port,
                "reason": verdict.reason,
                "client": data.client.peername[0] if data.client.peername else None,
            }})
            server.error = f"Sargs refused the destination: {verdict.reason}"
            return
        if server.via is None and literal_address(host) is None and (
                not server.tls or catalog.match(host) is None):
            # Pin the connection to the address just judged (DNS rebinding). Catalog hosts
            # over TLS keep their name, which mitmproxy's connection reuse keys on: an
            # inside host cannot pass the upstream certificate check for a platform's name.
            server.address = (str(verdict.address), port)

"""A real, in-process Sargs gateway for tests: mitmproxy on 127.0.0.1:0 with our addons.

    async with fake_site() as site, running_gateway(tmp_path, site.port, users=...) as gw:
        async with aiohttp.ClientSession() as s:
            r = await s.get("https://x.com/", proxy=gw.proxy_url, ssl=gw.ssl_context(),
                            proxy_auth=aiohttp.BasicAuth("anna", "pw"))

Catalog hosts (x.com, facebook.com, …) are served by ``site`` (plain HTTP on 127.0.0.1:
the ``LocalSites`` addon rewrites the destination and restores the Host header). Any
other upstream that is not loopback is refused, so a test can never reach the internet.
The gateway itself refuses every inside destination (loopback included) except what IT
lists: the harness lists exactly the stand-in sites' 127.0.0.1 ports
(``sargs_allowed_upstreams``; more with ``allowed=``), the same exception a deployment
would write for an intranet proxy.
mitmproxy keeps its running master in a global: one gateway per process at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from mitmproxy import http
from mitmproxy.options import Options
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.tools.dump import DumpMaster

from proxy.gateway.access import Access, GrantSource
from proxy.gateway.addons import make_addons
from proxy.gateway.identity import MemoryDirectory
from proxy.runtime import PolicyState
from proxy.settings import ROOT, Settings

EXAMPLE_POLICY = ROOT / "policies" / "institutions" / "example"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def copy_policy(tmp_path: Path) -> Path:
    """A writable copy of ``policies/`` (base + example); returns the example's directory."""
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    return target / "institutions" / "example"


class Clock:
    """An injectable, settable clock (``gateway.clock.set(datetime(...))``)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalSites:
    """Test-only: send catalog hosts to a local site; refuse every non-loopback upstream."""

    def __init__(self, state: PolicyState, port: int, routes: Mapping[str, int] | None = None):
        self.state = state
        self.port = port
        self.routes = dict(routes or {})
        self.refused: list[str] = []

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        host = flow.request.host
        if _is_loopback(host):
            return
        port = self.routes.get(host)
        if port is None and self.state.current.catalog.match(host) is not None:
            port = self.port
        if port is None:
            self.refused.append(host)
            flow.response = http.Response.make(
                502, b"test harness: no non-loopback upstreams", {"Content-Type": "text/plain"}
            )
            return
        host_header = flow.request.host_header
        flow.request.scheme = "http"
        flow.request.host = "127.0.0.1"
        flow.request.port = port
        flow.request.host_header = host_header

    def server_connect(self, data: ServerConnectionHookData) -> None:
        address = data.server.address
        if address is not None and not _is_loopback(address[0]):
            self.refused.append(address[0])
            data.server.error = "test harness: no non-loopback upstreams"


@dataclass
class Gateway:
    port: int
    ca_cert: Path
    confdir: Path
    master: DumpMaster
    state: PolicyState
    access: Access
    addons: list[object]
    sites: LocalSites
    directory: MemoryDirectory
    clock: Clock

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the gateway's CA only (so intercepted platform hosts verify)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


async def _wait_listening(master: DumpMaster, ca_cert: Path) -> int:
    proxyserver: Any = master.addons.get("proxyserver")
    for _ in range(500):  # bounded: at most ~5 s
        addrs = proxyserver.listen_addrs()
        # mitmproxy writes its CA in tlsconfig's `running` hook, which may come later.
        if addrs and await asyncio.to_thread(ca_cert.exists):
            return int(addrs[0][1])
        await asyncio.sleep(0.01)
    raise RuntimeError("mitmproxy did not start listening")


@contextlib.asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    site_port: int,
    *,
    policy: Path | PolicyState | None = None,
    users: Mapping[str, tuple[str, Iterable[str]]] | None = None,
    clock: Clock | None = None,
    grants: GrantSource | None = None,
    options: Mapping[str, Any] | None = None,
    routes: Mapping[str, int] | None = None,
    make: Callable[..., list[object]] = make_addons,
    allowed: Iterable[str] = (),
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[Gateway]:
    """Start mitmproxy with the Sargs addons on 127.0.0.1:0; stop it cleanly on exit."""
    state = policy if isinstance(policy, PolicyState) else PolicyState(policy or EXAMPLE_POLICY)
    confdir = tmp_path / "mitmproxy"
    confdir.mkdir(exist_ok=True)
    clock = clock or Clock()
    directory = MemoryDirectory(users or {})
    config = Settings(**{"policy": state.directory, "var_dir": tmp_path,
                         "gateway_metrics_port": 0, **dict(settings or {})})
    opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(confdir))
    master = DumpMaster(opts, with_termlog=False, with_dumper=False)
    addons = make(config, state, directory=directory, grants=grants, now=clock)
    sites = LocalSites(state, site_port, routes)
    master.addons.add(*addons, sites)
    ports = [site_port, *(routes or {}).values()]
    upstreams = [*(f"127.0.0.1:{port}" for port in ports), *allowed]
    opts.update(
        connection_strategy="lazy", sargs_reload_interval=0.05,
        sargs_allowed_upstreams=upstreams, **dict(options or {}),
    )
    members = [m for a in addons for m in getattr(a, "addons", [a])]
    access = next(a for a in members if isinstance(a, Access))
    task = asyncio.create_task(master.run())
    proxyserver: Any = master.addons.get("proxyserver")
    try:
        port = await _wait_listening(master, confdir / "mitmproxy-ca-cert.pem")
        yield Gateway(
            port=port,
            ca_cert=confdir / "mitmproxy-ca-cert.pem",
            confdir=confdir,
            master=master,
            state=state,
            access=access,
            addons=addons,
            sites=sites,
            directory=directory,
            clock=clock,
        )
    finally:
        await proxyserver.servers.update([])
        master.shutdown()
        await task


# --- a stand-in platform site ---------------------------------------------------------------


@dataclass
class SeenRequest:
    method: str
    host: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeSite:
    port: int
    seen: list[SeenRequest] = field(default_factory=list)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.seen if method is None or r.method == method]


@contextlib.asynccontextmanager
async def fake_site(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[FakeSite]:
    """A local site answering every path: HTML for browsers, JSON otherwise; records requests."""
    site = FakeSite(0)

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        site.seen.append(
            SeenRequest(
                request.method,
                request.host,
                request.path_qs,
                dict(request.headers),
                body,
            )
        )
        if "text/html" in request.headers.get("Accept", ""):
            return web.Response(
                text=f"<!doctype html><title>site</title><p>Hello from {request.host}</p>",
                content_type="text/html",
            )
        return web.json_response({"ok": True, "host": request.host, "path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await tcp.start()
    server: Any = tcp._server
    site.port = int(server.sockets[0].getsockname()[1])
    try:
        yield site
    finally:
        await runner.cleanup()


def self_signed(tmp_path: Path, name: str = "origin", ca: bool = False) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (or a CA when ``ca``): (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Sargs test {name}")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path

"""The access addon's hooks without sockets (mitmproxy's taddons/tflow), and its parsers."""

from __future__ import annotations

import base64
import ssl
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from mitmproxy import exceptions
from mitmproxy.options import Options
from mitmproxy.proxy import events, layer
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import TCPLayer
from mitmproxy.proxy.layers.tls import ServerTLSLayer
from mitmproxy.test import taddons, tflow, tutils

from proxy.gateway.access import Access
from proxy.gateway.flowinfo import info, peek
from proxy.gateway.headers import read_headers
from proxy.gateway.identity import Identifier, MemoryDirectory
from proxy.gateway.kinds import classify, wants_html
from proxy.policy.catalog import HostKind
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action
from proxy.runtime import PolicyState
from tests.support.gateway import EXAMPLE_POLICY, copy_policy

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 10:00 in Riga


@pytest.mark.parametrize(
    ("method", "accept", "dest", "xrw", "html"),
    [
        ("GET", "text/html,application/xhtml+xml", "", "", True),
        ("GET", "text/html", "document", "", True),
        ("GET", "text/html", "iframe", "", True),
        ("GET", "*/*", "empty", "", False),
        ("GET", "text/html", "empty", "", False),  # fetch() asking for HTML is still XHR
        ("GET", "application/json", "", "", False),
        ("GET", "text/html", "", "XMLHttpRequest", False),
        ("POST", "text/html", "", "", True),  # a form post navigation
        ("PUT", "text/html", "", "", False),
        ("GET", "image/avif,image/*", "image", "", False),
    ],
)
def test_wants_html(method: str, accept: str, dest: str, xrw: str, html: bool) -> None:
    assert wants_html(method, accept, dest, xrw) is html


@pytest.mark.parametrize(
    ("host_kind", "posting", "html", "kind"),
    [
        (HostKind.media, False, True, RequestKind.media),
        (HostKind.media, True, False, RequestKind.media),
        (HostKind.site, True, False, RequestKind.post),
        (HostKind.site, True, True, RequestKind.post),
        (HostKind.site, False, True, RequestKind.page),
        (HostKind.site, False, False, RequestKind.api),
    ],
)
def test_classify(host_kind: HostKind, posting: bool, html: bool, kind: RequestKind) -> None:
    assert classify(host_kind, posting, html) is kind


def login(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def access() -> Access:
    directory = MemoryDirectory({"eve": ("pw", ["intern"]), "carl": ("pw", ["communicator"])})
    return Access(PolicyState(EXAMPLE_POLICY), directory=directory, now=lambda: NOW)


def flow_for(host: str, path: str = "/", method: str = "GET", user: str | None = "eve",
             accept: str = "text/html") -> tflow.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(host=host, port=443, scheme=b"https", path=path.encode(),
                                    method=method.encode(), headers=[]))
    f.request.headers["Host"] = host
    f.request.headers["Accept"] = accept
    f.server_conn.address = (host, 443)  # the CONNECT tunnel it came through
    f.client_conn.sni = host
    if user:
        f.request.headers["Proxy-Authorization"] = login(user, "pw")
    return f


async def test_allowed_request_leaves_metadata_for_later_addons(access: Access) -> None:
    with taddons.context(access):
        f = flow_for("www.linkedin.com", user="eve")
        await access.requestheaders(f)
        assert f.response is None
        record = info(f)
        assert record.platform == "linkedin"
        assert record.host == "www.linkedin.com"
        assert isinstance(record.decision, Decision)
        assert record.decision.allowed
        assert record.subject == Subject("eve", frozenset({"intern"}), "basic")
        assert record.lang == "en"
        assert list(f.metadata) == ["sargs"]
        assert "Proxy-Authorization" not in f.request.headers


async def test_blocked_page_gets_403_html(access: Access) -> None:
    with taddons.context(access):
        f = flow_for("x.com")
        await access.requestheaders(f)
        assert f.response is not None
        assert f.response.status_code == 403
        assert f.response.headers["Content-Type"].startswith("text/html")


async def test_flows_already_answered_are_skipped(access: Access) -> None:
    with taddons.context(access):
        f = flow_for("x.com")
        f.response = tutils.tresp()
        await access.requestheaders(f)
        assert f.response.status_code == 200
        assert peek(f) is None or peek(f).decision is None  # type: ignore[union-attr]


async def test_non_catalog_hosts_need_an_identity_too(access: Access) -> None:
    with taddons.context(access):
        f = flow_for("example.org", user=None)
        await access.requestheaders(f)
        assert f.response is not None
        assert f.response.status_code == 407
        known = flow_for("example.org", user="eve")
        await access.requestheaders(known)
        assert known.response is None
        assert info(known).decision is None  # identified; Sargs does not govern the site


async def test_every_connect_asks_for_login(access: Access) -> None:
    with taddons.context(access):
        for host in ("x.com", "example.org"):
            f = flow_for(host, user=None)
            f.request.method = "CONNECT"
            await access.http_connect(f)
            assert f.response is not None
            assert f.response.status_code == 407
            assert f.response.headers["Proxy-Authenticate"].startswith(
                'Basic realm="Sargs (Example Ministry)"'
            )
        other = flow_for("example.org", user="eve")
        other.request.method = "CONNECT"
        await access.http_connect(other)
        assert other.response is None


@pytest.mark.parametrize(
    ("sni", "address", "ignored"),
    [
        ("x.com", ("x.com", 443), False),
        ("www.facebook.com", ("157.240.0.35", 443), False),
        (None, ("pbs.twimg.com", 443), False),
        ("example.org", ("example.org", 443), True),
        (None, ("127.0.0.1", 8443), True),
    ],
)
async def test_tls_is_intercepted_only_for_catalog_hosts(
    access: Access, sni: str | None, address: tuple[str, int], ignored: bool
) -> None:
    data = SimpleNamespace(
        ignore_connection=False,
        client_hello=SimpleNamespace(sni=sni),
        context=SimpleNamespace(server=SimpleNamespace(address=address)),
    )
    with taddons.context(access):
        access.tls_clienthello(data)  # type: ignore[arg-type]
    assert data.ignore_connection is ignored


def client_hello(sni: str | None) -> bytes:
    """The first TLS record a real client sends (Python's ssl, no socket)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def tls_next_layer(data: bytes, address: tuple[str, int]) -> layer.NextLayer:
    """A CONNECT tunnel's layer decision as mitmproxy's NextLayer addon leaves it for TLS."""
    context = Context(tflow.tclient_conn(), Options())
    context.server.address = address
    nextlayer = layer.NextLayer(context)
    nextlayer.events.append(events.DataReceived(context.client, data))
    nextlayer.layer = ServerTLSLayer(context)
    return nextlayer


@pytest.mark.parametrize(
    ("sni", "address", "tunnelled"),
    [
        ("x.com", ("x.com", 443), False),
        ("www.facebook.com", ("157.240.0.35", 443), False),
        (None, ("pbs.twimg.com", 443), False),
        ("example.org", ("x.com", 443), False),  # destination on the catalog
        ("example.org", ("example.org", 443), True),
        (None, ("127.0.0.1", 8443), True),
    ],
)
async def test_non_catalog_tls_is_tunnelled_at_the_layer_decision(
    access: Access, sni: str | None, address: tuple[str, int], tunnelled: bool
) -> None:
    nextlayer = tls_next_layer(client_hello(sni), address)
    with taddons.context(access):
        access.next_layer(nextlayer)
    if tunnelled:
        assert isinstance(nextlayer.layer, TCPLayer)
        assert nextlayer.layer.flow is None  # ignored: no TCP flow, no hooks, untouched
    else:
        assert isinstance(nextlayer.layer, ServerTLSLayer)


async def test_layer_decision_left_to_tls_clienthello_when_unsure(access: Access) -> None:
    hello = client_hello("example.org")
    partial = tls_next_layer(hello[:40], ("example.org", 443))  # the rest not yet read
    garbled = tls_next_layer(hello[:5] + b"\x00" * (len(hello) - 5), ("example.org", 443))
    plain = tls_next_layer(hello, ("example.org", 443))
    plain.layer = TCPLayer(plain.context)  # not TLS interception: not ours to change
    with taddons.context(access):
        for nextlayer in (partial, garbled, plain):
            before = nextlayer.layer
            access.next_layer(nextlayer)
            assert nextlayer.layer is before


async def test_configure_rejects_a_bad_policy_naming_file_and_line(tmp_path: Path) -> None:
    directory = copy_policy(tmp_path)
    roles = directory / "roles.yaml"
    roles.write_text(roles.read_text().replace("tiktok: block", "tiktok: alow", 1))
    access = Access()
    with taddons.context(access) as tctx, pytest.raises(exceptions.OptionsError) as info:
        tctx.configure(access, sargs_policy=str(directory))
    assert "roles.yaml:" in str(info.value)
    assert "'alow' is not one of" in str(info.value)


async def test_configure_options(access: Access) -> None:
    with taddons.context(access) as tctx:
        tctx.configure(access, sargs_service_url="https://sargs.example.gov.lv/")
        assert access.service_url == "https://sargs.example.gov.lv"
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(access, sargs_service_url="ftp://x")
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(access, sargs_reload_interval=0)


# --- the hot path: one header scan, identity remembered per connection -------------------------


async def test_every_proxy_login_header_is_removed_and_the_rest_kept_in_order(
    access: Access,
) -> None:
    with taddons.context(access):
        f = flow_for("www.linkedin.com", user="eve")
        f.request.headers.add("proxy-authorization", login("eve", "pw"))
        f.request.headers["X-Trace"] = "1"
        await access.requestheaders(f)
        assert info(f).decision.allowed  # type: ignore[union-attr]
        assert [k.lower() for k, _ in f.request.headers.items(multi=True)] == [
            "host", "accept", "x-trace"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_connection_is_identified_once_until_its_login_expires() -> None:
    directory = MemoryDirectory({"eve": ("pw", ["intern"])})
    clock = Clock()
    access = Access(PolicyState(EXAMPLE_POLICY), now=lambda: NOW,
                    identifier=Identifier(directory, clock=clock))
    with taddons.context(access):
        first = flow_for("www.linkedin.com", user="eve")
        await access.requestheaders(first)
        for _ in range(3):  # more requests on the same connection
            f = flow_for("www.linkedin.com", user="eve")
            f.client_conn = first.client_conn
            await access.requestheaders(f)
            assert info(f).subject.user  # type: ignore[union-attr] == "eve"
        assert directory.calls == 1
        # The user is removed; the connection still holds the login until the cache's TTL.
        del directory.users["eve"]
        ttl = access._compiled().loaded.policy.identity.login_cache_seconds
        clock.now += ttl + 1
        f = flow_for("www.linkedin.com", user="eve")
        f.client_conn = first.client_conn
        await access.requestheaders(f)
        assert f.response is not None
        assert f.response.status_code == 407
        assert directory.calls == 2


async def test_another_login_on_the_same_connection_is_checked_again() -> None:
    directory = MemoryDirectory({"eve": ("pw", ["intern"]), "carl": ("pw", ["communicator"])})
    access = Access(PolicyState(EXAMPLE_POLICY), directory=directory, now=lambda: NOW)
    with taddons.context(access):
        first = flow_for("www.linkedin.com", user="eve")
        await access.requestheaders(first)
        other = flow_for("www.linkedin.com", user="carl")
        other.client_conn = first.client_conn
        await access.requestheaders(other)
        assert info(other).subject.user  # type: ignore[union-attr] == "carl"
        wrong = flow_for("www.linkedin.com", user=None)
        wrong.request.headers["Proxy-Authorization"] = login("eve", "not-pw")
        wrong.client_conn = first.client_conn
        await access.requestheaders(wrong)
        assert wrong.response is not None
        assert wrong.response.status_code == 407
        # Clearing the login cache forgets what connections remembered too.
        access.identifier.clear()
        directory.users.pop("eve")
        again = flow_for("www.linkedin.com", user="eve")
        again.client_conn = first.client_conn
        await access.requestheaders(again)
        assert again.response is not None
        assert again.response.status_code == 407


def test_explanations_follow_the_policy_in_force_and_the_url() -> None:
    from proxy.gateway import refusal

    policy = PolicyState(EXAMPLE_POLICY).current.loaded.policy
    decision = Decision(False, Action.block, "tiktok", Rule.role, "no", "staff")
    first = refusal.explain(policy, decision, "en", "https://s.example", "https://www.tiktok.com/a")
    again = refusal.explain(policy, decision, "en", "https://s.example", "https://www.tiktok.com/b")
    assert first.title == again.title
    assert "tiktok.com%2Fa" in str(first.request_url)
    assert "tiktok.com%2Fb" in str(again.request_url)
    tiktok = policy.platforms["tiktok"].model_copy(update={"name": "TikTok (renamed)"})
    renamed = policy.model_copy(update={"platforms": {**policy.platforms, "tiktok": tiktok}})
    after_reload = refusal.explain(renamed, decision, "en", "https://s.example", "https://x/")
    assert "TikTok (renamed)" in after_reload.title
    assert "TikTok (renamed)" not in first.title
    assert refusal.explain(renamed, decision, "lv", "https://s.example", "https://x/").title \
        != after_reload.title


@pytest.mark.parametrize(
    ("fields", "login", "hosts", "kept"),
    [
        ([(b"Host", b"x.com"), (b"Proxy-Authorization", b"Basic a"), (b"Accept", b"*/*")],
         "Basic a", ("x.com",), [b"Host", b"Accept"]),
        ([(b"proxy-authorization", b"Basic a"), (b"PROXY-AUTHORIZATION", b"Basic b")],
         "Basic a", (), []),
        ([(b"Host", b"a"), (b"host", b"b")], None, ("a", "b"), None),
        ([], None, (), None),
    ],
)
def test_one_pass_finds_the_login_every_host_and_strips_every_login(
    fields: list[tuple[bytes, bytes]], login: str | None, hosts: tuple[str, ...],
    kept: list[bytes] | None,
) -> None:
    seen, stripped = read_headers(tuple(fields))
    assert seen.proxy_authorization == login
    assert seen.hosts == hosts
    assert (None if stripped is None else [name for name, _ in stripped]) == kept

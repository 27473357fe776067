"""The access addon: identity, per-role decisions and refusals for catalog platforms.

- Hosts outside the platform catalog are tunnelled without TLS interception
  (``next_layer`` tunnels them once the ClientHello is in, else ``tls_clienthello``
  sets ``ignore_connection``) and need no identity.
- For catalog hosts the client is identified (``identity.py``) at ``CONNECT`` (a 407 asks
  for the proxy login there, where browsers can answer it) and on every request.
- Each request gets a decision from the pure ``proxy.policy.decide`` core; refusals are a
  localized block page (page loads) or a JSON 403 (everything else), see ``refusal.py``.
- Every decision is one JSON line on the ``sargs.decisions`` logger (``decisionlog.py``).
- Later addons read ``flow.metadata``: ``sargs.identity`` (Subject), ``sargs.platform``,
  ``sargs.decision`` (Decision), ``sargs.kind`` (RequestKind), ``sargs.lang``.
- The policy directory is polled (``sargs_reload_interval``); a valid change applies at
  once, a broken one is logged with file:line and the previous policy stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from mitmproxy import connection, ctx, exceptions, http, tls
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers import TCPLayer
from mitmproxy.proxy.layers.tls import ServerTLSLayer, parse_client_hello

from proxy.gateway import decisionlog, refusal
from proxy.gateway.identity import Identifier, IpRanges, Outcome, StoreDirectory, UserDirectory
from proxy.i18n import negotiate
from proxy.policy.catalog import HostKind, HostMatch
from proxy.policy.decide import Grant, RequestKind
from proxy.policy.loader import PolicyError
from proxy.runtime import Compiled, PolicyState

log = logging.getLogger("sargs.gateway")
V = TypeVar("V")

# --- grants --------------------------------------------------------------------------------


class GrantSource(Protocol):
    """Active temporary-access grants of a user (must answer from memory: it runs per request)."""

    def active(self, user: str) -> Iterable[Grant]: ...


class MemoryGrants:
    """Grants held in memory (tests; until the service's grant sync plugs in)."""

    def __init__(self, grants: Iterable[Grant] = ()) -> None:
        self._by_user: dict[str, list[Grant]] = {}
        for grant in grants:
            self.add(grant)

    def add(self, grant: Grant) -> None:
        self._by_user.setdefault(grant.user, []).append(grant)

    def revoke(self, grant_id: str) -> None:
        for grants in self._by_user.values():
            grants[:] = [g for g in grants if g.id != grant_id]

    def active(self, user: str) -> Sequence[Grant]:
        return self._by_user.get(user, ())


# --- pure parsers --------------------------------------------------------------------------

_DOCUMENT_DESTS = frozenset({"document", "iframe", "frame"})
_POST_METHODS = frozenset({"POST", "PUT", "PATCH"})


def wants_html(method: str, accept: str, sec_fetch_dest: str, requested_with: str = "") -> bool:
    """Whether a refusal should be a page (a navigation) rather than JSON (fetch/XHR)."""
    if sec_fetch_dest:
        return sec_fetch_dest.lower() in _DOCUMENT_DESTS
    if requested_with:
        return False
    if method.upper() not in ("GET", "HEAD", "POST"):
        return False
    return "text/html" in accept.lower()


def classify(host_kind: HostKind, posting: bool, html: bool) -> RequestKind:
    if host_kind is HostKind.media:
        return RequestKind.media
    if posting:
        return RequestKind.post
    return RequestKind.page if html else RequestKind.api


class RequestHeaders(NamedTuple):
    """The few request headers the access decision reads, found in one pass."""

    proxy_authorization: str | None
    accept_language: str | None
    accept: str
    sec_fetch_dest: str
    requested_with: str


_WANTED = {
    b"proxy-authorization": 0,
    b"accept-language": 1,
    b"accept": 2,
    b"sec-fetch-dest": 3,
    b"x-requested-with": 4,
}


def scan_headers(fields: Sequence[tuple[bytes, bytes]]) -> RequestHeaders:
    """One pass over raw header fields (mitmproxy's ``Headers.get`` scans all of them per
    call and decodes each name). The first occurrence of each header wins, like ``get``."""
    found: list[str | None] = [None, None, None, None, None]
    for name, value in fields:
        i = _WANTED.get(name.lower())
        if i is not None and found[i] is None:
            found[i] = value.decode("utf-8", "surrogateescape")
    return RequestHeaders(found[0], found[1], found[2] or "", found[3] or "", found[4] or "")


def without_header(
    fields: tuple[tuple[bytes, bytes], ...], name: bytes
) -> tuple[tuple[bytes, bytes], ...]:
    """``fields`` less every ``name`` header (``name`` in lower case)."""
    return tuple(field for field in fields if field[0].lower() != name)


def read_headers(
    fields: tuple[tuple[bytes, bytes], ...],
) -> tuple[RequestHeaders, tuple[tuple[bytes, bytes], ...] | None]:
    """``scan_headers(fields)`` and, when a Proxy-Authorization header is present,
    ``without_header(fields, b"proxy-authorization")`` (else None), in one pass."""
    found: list[str | None] = [None, None, None, None, None]
    kept: list[tuple[bytes, bytes]] = []
    stripped = False
    for field in fields:
        i = _WANTED.get(field[0].lower())
        if i is None:
            kept.append(field)
            continue
        if i == 0:
            stripped = True
        else:
            kept.append(field)
        if found[i] is None:
            found[i] = field[1].decode("utf-8", "surrogateescape")
    headers = RequestHeaders(found[0], found[1], found[2] or "", found[3] or "", found[4] or "")
    return headers, tuple(kept) if stripped else None


class ByClient(Generic[V]):
    """A value per live client connection, dropped with the connection (like a
    ``WeakKeyDictionary``), found by identity: ``Connection`` compares and hashes in
    Python, which a ``WeakKeyDictionary`` lookup calls on every request."""

    def __init__(self) -> None:
        self._data: dict[int, tuple[weakref.ref[connection.Client], V]] = {}

    def get(self, client: connection.Client) -> V | None:
        entry = self._data.get(id(client))
        if entry is None or entry[0]() is not client:
            return None
        return entry[1]

    def __setitem__(self, client: connection.Client, value: V) -> None:
        key = id(client)
        entry = self._data.get(key)
        if entry is not None and entry[0]() is client:
            self._data[key] = (entry[0], value)
            return
        data = self._data

        def forget(ref: weakref.ref[connection.Client]) -> None:
            if (held := data.get(key)) is not None and held[0] is ref:
                del data[key]

        self._data[key] = (weakref.ref(client, forget), value)

    def pop(self, client: connection.Client) -> None:
        entry = self._data.get(id(client))
        if entry is not None and entry[0]() is client:
            del self._data[id(client)]

    def __len__(self) -> int:
        return len(self._data)


class Target(NamedTuple):
    host: str
    match: HostMatch


def match_host(
    compiled: Compiled, host: str, host_header: str | Callable[[], str]
) -> Target | None:
    """The catalog platform of a request, by its destination or else its Host header
    (``host_header`` may be a callable: only computed when the destination does not match)."""
    hit = compiled.catalog.match(host) if host else None
    if hit is not None:
        return Target(host, hit)
    if callable(host_header):
        host_header = host_header()
    if host_header and host_header != host:
        hit = compiled.catalog.match(host_header)
        if hit is not None:
            return Target(host_header, hit)
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def watch_policy(state: PolicyState, interval: Callable[[], float]) -> None:
    """Poll the policy files; reload on change (errors are logged by ``PolicyState``).

    A service sharing the state watches too; whichever sees a change first handles it.
    """
    await state.watch(interval)


# --- the addon -----------------------------------------------------------------------------


class Access:
    """Identity and access enforcement; first in the Sargs addon chain."""

    def __init__(
        self,
        state: PolicyState | None = None,
        *,
        directory: UserDirectory | None = None,
        grants: GrantSource | None = None,
        now: Callable[[], datetime] = _utcnow,
        identifier: Identifier | None = None,
    ) -> None:
        self.state = state
        self.grants: GrantSource = grants or MemoryGrants()
        self.now = now
        self.identifier = identifier or Identifier(directory)
        self.service_url = ""
        self._logins: ByClient[str] = ByClient()
        self._known: ByClient[_Known] = ByClient()
        self._langs: dict[str | None, str] = {}
        self._ranges: tuple[Compiled | None, IpRanges | None] = (None, None)
        self._watcher: asyncio.Task[None] | None = None

    # -- options ---------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "sargs_policy", str, "",
            "Sargs policy directory (default: the one given by the embedding program, "
            "else SARGS_POLICY or the example institution).",
        )
        loader.add_option(
            "sargs_database", str, "",
            "SQLAlchemy URL of the Sargs store whose users log in to the proxy "
            "(default: the user directory given by the embedding program).",
        )
        loader.add_option(
            "sargs_service_url", str, "",
            "Base URL of the Sargs service for block-page links "
            "(default: the policy's institution.service_url).",
        )
        loader.add_option(
            "sargs_reload_interval", float, 1.0,
            "Seconds between checks of the policy files for changes.",
        )

    def configure(self, updated: set[str]) -> None:
        if "sargs_policy" in updated or self.state is None:
            path = ctx.options.sargs_policy
            if path or self.state is None:
                self._use_policy(Path(path) if path else None)
        if "sargs_reload_interval" in updated and ctx.options.sargs_reload_interval <= 0:
            raise _options_error("sargs_reload_interval must be positive")
        if "sargs_service_url" in updated:
            url = ctx.options.sargs_service_url
            if url and not url.startswith(("http://", "https://")):
                raise _options_error(f"sargs_service_url: {url!r} is not an http(s) URL")
            self.service_url = url.rstrip("/")
        if "sargs_database" in updated and ctx.options.sargs_database:
            self.identifier.directory = _store_directory(ctx.options.sargs_database)

    def _use_policy(self, path: Path | None) -> None:
        if path is None:
            from proxy.settings import Settings

            path = Settings().policy
        if self.state is not None and self.state.directory.resolve() == path.resolve():
            return
        try:
            self.state = PolicyState(path)
        except PolicyError as exc:
            raise _options_error(f"sargs_policy: {exc}") from None

    # -- lifecycle -------------------------------------------------------------------------

    def running(self) -> None:
        if self._watcher is None and self.state is not None:
            state = self.state
            self._watcher = asyncio.get_running_loop().create_task(
                watch_policy(state, lambda: float(ctx.options.sargs_reload_interval))
            )

    async def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    # -- hooks -----------------------------------------------------------------------------

    def _compiled(self) -> Compiled:
        assert self.state is not None, "configure() loads the policy"
        return self.state.current

    def _intercepts(self, sni: str | None, server: connection.Address | None) -> bool:
        """Whether TLS to this SNI or destination is for a catalog host (decrypted)."""
        catalog = self._compiled().catalog
        for host in (sni, server[0] if server else None):
            if host and catalog.match(host) is not None:
                return True
        return False

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        """Tunnel non-catalog TLS as soon as its ClientHello is complete, the way
        mitmproxy's ``ignore_hosts`` does: no TLS layers are stacked over a connection we
        never decrypt (each would pass every read and write through it), and no
        ``tls_clienthello`` round through every addon. Anything not decided here (a
        ClientHello split over several reads, QUIC) is still decided there."""
        if type(nextlayer.layer) is not ServerTLSLayer:  # mitmproxy's choice: intercept TLS
            return
        context = nextlayer.context
        try:
            hello = parse_client_hello(nextlayer.data_client())  # type: ignore[no-untyped-call]
        except ValueError:
            return  # mitmproxy's TLS layer reports it
        if hello is None or self._intercepts(hello.sni, context.server.address):
            return
        nextlayer.layer = TCPLayer(context, ignore=True)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Intercept TLS only for catalog hosts; tunnel everything else untouched."""
        if data.ignore_connection:
            return
        if not self._intercepts(data.client_hello.sni, data.context.server.address):
            data.ignore_connection = True

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        request = flow.request
        header = request.headers.get("Proxy-Authorization")
        if header is not None:
            del request.headers["Proxy-Authorization"]  # ours: never forwarded upstream
        compiled = self._compiled()
        if compiled.catalog.match(request.host) is None:
            return
        outcome = await self._identify(compiled, flow, header)
        if outcome.subject is None:
            lang = negotiate(request.headers.get("Accept-Language"))
            identity = compiled.loaded.policy.identity
            flow.response = refusal.login_required(
                identity.realm, outcome.challenge or "", lang, html=False,
                schemes=self.identifier.schemes(identity),
            )
            return
        if header and outcome.subject.source == "basic":
            # Requests inside the tunnel carry no Proxy-Authorization: remember it for
            # this connection (plain-HTTP proxy requests carry it on every request).
            self._logins[flow.client_conn] = header
        flow.metadata["sargs.identity"] = outcome.subject

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        request = flow.request
        compiled = self._compiled()
        target = match_host(compiled, request.host, lambda: request.pretty_host)
        seen, stripped = read_headers(request.headers.fields)
        header = seen.proxy_authorization
        if stripped is not None:  # Proxy-Authorization is ours: never forwarded upstream
            request.headers.fields = stripped
        if target is None:
            return
        lang = self._lang(seen.accept_language)
        method = request.method
        html = wants_html(method, seen.accept, seen.sec_fetch_dest, seen.requested_with)
        metadata = flow.metadata
        metadata["sargs.lang"] = lang
        outcome = await self._identify(
            compiled, flow, header or self._logins.get(flow.client_conn)
        )
        subject = outcome.subject
        if subject is None:
            identity = compiled.loaded.policy.identity
            flow.response = refusal.login_required(
                identity.realm, outcome.challenge or "", lang, html,
                schemes=self.identifier.schemes(identity),
            )
            return
        match = target.match
        platform = match.platform
        full_path = request.path
        posting = (
            method in _POST_METHODS
            and match.kind is HostKind.site
            and compiled.catalog.posting_endpoint(
                platform, target.host, method, full_path
            ) is not None
        )
        kind = classify(match.kind, posting, html)
        grants = self.grants.active(subject.user) if subject.user else ()
        decision = compiled.access.decide(subject, platform, kind, self.now(), grants)
        path = full_path.split("?", 1)[0]
        decisionlog.record(
            decision, subject, host=target.host, method=method, path=path,
            kind=kind, policy=compiled.version,
        )
        metadata["sargs.identity"] = subject
        metadata["sargs.platform"] = platform
        metadata["sargs.decision"] = decision
        metadata["sargs.kind"] = kind
        if decision.allowed:
            return
        policy = compiled.loaded.policy
        url = f"{request.scheme}://{request.pretty_host}{path}"
        service_url = self.service_url or policy.institution.service_url
        explanation = refusal.explain(policy, decision, lang, service_url, url)
        if html:
            flow.response = refusal.block_page(
                explanation, decision, subject, lang, compiled.version, url
            )
        else:
            flow.response = refusal.block_json(explanation, decision, lang)

    def _lang(self, accept_language: str | None) -> str:
        """``negotiate`` remembered per distinct Accept-Language value (browsers send few)."""
        lang = self._langs.get(accept_language)
        if lang is None:
            lang = negotiate(accept_language)
            if len(self._langs) >= 1024:
                self._langs.clear()
            self._langs[accept_language] = lang
        return lang

    async def _identify(
        self, compiled: Compiled, flow: http.HTTPFlow, header: str | None
    ) -> Outcome:
        """Who sent the flow; remembered per client connection while the login cache (or,
        for address-based identities, the policy in force) says it still holds."""
        client = flow.client_conn
        known = self._known.get(client)
        if (
            known is not None
            and known.compiled is compiled
            and known.header == header
            and known.generation == self.identifier.generation
            and known.expires > self.identifier.clock()
        ):
            return known.outcome
        cached, ranges = self._ranges
        if cached is not compiled or ranges is None:
            ranges = IpRanges(compiled.loaded.policy.identity)
            self._ranges = (compiled, ranges)
        address = client.peername[0] if client.peername else ""
        outcome = await self.identifier.identify(
            header, address, compiled.loaded.policy.identity, ranges, client
        )
        subject = outcome.subject
        if subject is not None:
            expires = (
                self.identifier.cached_until(header)
                if subject.source == "basic" and header is not None
                else self.identifier.clock() + self.identifier.negotiate.fresh_for(client)
                if subject.source == "negotiate" and self.identifier.negotiate is not None
                else math.inf
            )
            self._known[client] = _Known(
                compiled, header, outcome, expires, self.identifier.generation
            )
        else:
            self._known.pop(client)
        return outcome


class _Known(NamedTuple):
    """An identity remembered for one client connection."""

    compiled: Compiled
    header: str | None
    outcome: Outcome
    expires: float
    """``Identifier.clock`` time until which it holds (the login cache's expiry)."""
    generation: int


def _options_error(message: str) -> Exception:
    error: Exception = exceptions.OptionsError(message)  # type: ignore[no-untyped-call]
    return error


def _store_directory(url: str) -> UserDirectory:
    from proxy.store import StoreError, open_store

    try:
        return StoreDirectory(open_store(url))
    except (StoreError, ValueError, OSError) as exc:
        raise _options_error(f"sargs_database: cannot open {url!r}: {exc}") from None

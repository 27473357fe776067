"""The access addon: identity, destinations, per-role decisions and refusals.

Why this module is over 500 lines: it is one mitmproxy add-on, whose hooks (connect,
TLS, headers, body), options and the refusals they share decide one flow together; split
across files, a reader would follow one request through several. The pure parts already
live in ``kinds.py``, ``hosts.py``, ``destinations.py``, ``extract.py``, ``clients.py``
and ``proxy/policy``.

- Every request and every ``CONNECT`` needs an identity (``identity.py``: a login or a
  configured address range), catalog host or not; a 407 asks for the proxy login at
  ``CONNECT``, where browsers can answer it.
- No destination inside the institution's network (``destinations.py``): addresses are
  refused at once, names when mitmproxy is about to connect (``server_connect``).
- Hosts outside the platform catalog are tunnelled without TLS interception
  (``next_layer`` tunnels them once the ClientHello is in, else ``tls_clienthello``
  sets ``ignore_connection``).
- A request whose Host/``:authority``, ``CONNECT`` destination and SNI disagree is
  refused (421, ``hosts.py``).
- Each catalog request gets a decision from the pure ``proxy.policy.decide`` core. Safe
  methods are decided on their headers; unsafe ones (``proxy.policy.canonical``) once
  their body is in (``request``): a post (a posting endpoint), a listed reading call,
  or another write. Refusals are a localized block page (page loads) or JSON (the rest),
  see ``refusal.py``.
- What it learned goes into the flow record (``flowinfo.info(flow)``): subject, platform,
  host, request kind, language, decision, and why it refused what was not a decision;
  later add-ons (and the decision log) read it there.
- The policy directory is polled (``sargs_reload_interval``); a valid change applies at
  once, a broken one is logged with file:line and the previous policy stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from mitmproxy import connection, ctx, exceptions, http, tls
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers import TCPLayer
from mitmproxy.proxy.layers.tls import ServerTLSLayer, parse_client_hello
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from proxy.gateway import hosts, refusal
from proxy.gateway.clients import Clients
from proxy.gateway.destinations import DestinationGuard
from proxy.gateway.extract import Request
from proxy.gateway.flowinfo import info, peek
from proxy.gateway.headers import read_headers
from proxy.gateway.identity import (
    ANONYMOUS,
    Identifier,
    Outcome,
    StoreDirectory,
    UserDirectory,
)
from proxy.gateway.kinds import classify, unsafe_kind, wants_html
from proxy.i18n import negotiate
from proxy.policy.canonical import canonical_path, is_unsafe
from proxy.policy.catalog import HostKind
from proxy.policy.decide import Grant, RequestKind, Subject
from proxy.policy.loader import PolicyError
from proxy.runtime import Compiled, PolicyState

log = logging.getLogger("sargs.gateway")

RESERVED = b"/__sargs/"
"""The path prefix the gateway answers itself on platform hosts (``inject.py``: every
request under it is answered there, none reaches the platform)."""

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


def identified(outcome: Outcome) -> bool:
    """Whether the client is known: a login or a configured address range (not anonymous)."""
    return outcome.subject is not None and outcome.subject.source != ANONYMOUS.source


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
        self.clients = Clients(self.identifier)
        self.service_url = ""
        self._langs: dict[str | None, str] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.destinations = DestinationGuard()

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
        loader.add_option(
            "sargs_allowed_upstreams", Sequence[str], [],
            "Inside addresses the gateway may relay to although they are loopback, private "
            "or link-local (IT's explicit exceptions): ADDRESS[/PREFIX][:PORT], IPv6 in "
            "brackets, e.g. 10.20.0.0/16:3128 or [fd00::1]:80. Nothing inside by default.",
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
        if updated & {"sargs_allowed_upstreams", "listen_host", "listen_port",
                      "sargs_service_url", "mode"}:
            self._configure_destinations()
        if "sargs_database" in updated and ctx.options.sargs_database:
            self.identifier.directory = _store_directory(ctx.options.sargs_database)
        if "stream_large_bodies" in updated and ctx.options.stream_large_bodies:
            # mitmproxy would stream a request body past that size to the platform as it
            # arrives (a chunked post too, once that much is buffered): past the post
            # check. Sargs streams itself whatever it need not read.
            raise _options_error(
                "stream_large_bodies cannot be used with Sargs: it would send posts over "
                "that size to the platform unchecked")

    def _configure_destinations(self) -> None:
        """The IT allow-list and Sargs's own listening addresses (never a destination)."""
        own: list[tuple[str, int]] = []
        options = ctx.options
        if options.listen_host and options.listen_port:
            own.append((options.listen_host, int(options.listen_port)))
        service = urlsplit(self.service_url) if self.service_url else None
        if service is not None and service.hostname:
            own.append((service.hostname, service.port or (443 if service.scheme == "https"
                                                             else 80)))
        proxies = []
        for mode in options.mode:
            if mode.startswith("upstream:"):
                url = urlsplit(mode.partition(":")[2])
                if url.hostname:
                    proxies.append((url.hostname, url.port or (443 if url.scheme == "https"
                                                                else 8080)))
        try:
            self.destinations.configure(options.sargs_allowed_upstreams, own, proxies)
        except ValueError as exc:
            raise _options_error(f"sargs_allowed_upstreams: {exc}") from None

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
        """Every CONNECT needs an identity, and never to an inside address."""
        if flow.response or flow.error:
            return
        request = flow.request
        header = _take_login(request.headers)
        compiled = self._compiled()
        lang = self._lang(request.headers.get("Accept-Language"))
        record = info(flow)
        record.lang = lang
        outcome = await self.clients.identify(compiled, flow.client_conn, header)
        if not identified(outcome):
            self._refuse_login(flow, compiled, outcome, lang, html=False)
            return
        assert outcome.subject is not None
        record.subject = outcome.subject
        if header and outcome.subject.source == "basic":
            # Requests inside the tunnel carry no Proxy-Authorization: remember it for
            # this connection (plain-HTTP proxy requests carry it on every request).
            self.clients.remember_login(flow.client_conn, header)
        why = await self.destinations.refusal(request.host, request.port)
        if why is not None:
            self._refuse_inside(flow, request.host, request.port, why, lang)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        request = flow.request
        compiled = self._compiled()
        seen, stripped = read_headers(request.headers.fields)
        if stripped is not None:  # the proxy login is ours: never forwarded upstream
            request.headers.fields = stripped
        header = seen.proxy_authorization
        lang = self._lang(seen.accept_language)
        method = request.method
        html = wants_html(method, seen.accept, seen.sec_fetch_dest, seen.requested_with)
        record = info(flow)
        record.lang = lang
        outcome = await self.clients.identify(compiled, flow.client_conn, header)
        if not identified(outcome):
            self._refuse_login(flow, compiled, outcome, lang, html)
            return
        subject = outcome.subject
        assert subject is not None
        record.subject = subject
        guard = self.destinations
        if guard.needs_resolving(request.host):
            why = await guard.refusal(request.host, request.port)
        else:
            why = guard.literal_refusal(request.host, request.port)
        if why is not None:
            self._refuse_inside(flow, request.host, request.port, why, lang)
            return
        host = request.host.lower().rstrip(".")
        match = compiled.catalog.match(host) if host else None
        why = hosts.mismatch(
            request.host, request.port,
            [*seen.hosts, *([request.authority] if request.authority else [])],
            flow.server_conn.address if flow.server_conn.address else None,
            flow.client_conn.sni,
        )
        if why is not None:
            self._refuse_mismatch(flow, compiled, subject, why, lang)
            return
        if match is None:
            return  # outside the catalog: identified, relayed (never to an inside address)
        record.platform = match.platform
        record.host = host
        if match.kind is HostKind.site and is_unsafe(method):
            if request.data.path.startswith(RESERVED):
                # The gateway's own path (the content script's check calls): answered by
                # the injection add-on, never relayed to the platform.
                self._decide(flow, compiled, subject, RequestKind.api, html)
                return
            if canonical_path(request.path) is None:
                self._refuse(flow, "unreadable-path", 400, "unreadable_request", lang)
                return
            # Decided in ``request``, once the body is in: it tells a post from a read.
            request.stream = False
            return
        kind = classify(match.kind, False, html)
        self._decide(flow, compiled, subject, kind, html)

    def request(self, flow: http.HTTPFlow) -> None:
        """The decision on an unsafe request to a platform, with its body read: a post
        (a posting endpoint, text or not), a listed reading call, or another write."""
        if flow.response or flow.error or not flow.live:
            return
        record = peek(flow)
        if record is None or record.platform is None or record.kind is not None:
            return
        request = flow.request
        compiled = self._compiled()
        path = canonical_path(request.path)
        assert path is not None  # requestheaders refused the unreadable
        assert record.subject is not None
        headers = request.headers
        try:
            body: Request | None = Request(
                request.get_content(strict=True) or b"", headers.get("Content-Type", ""),
                request.path.partition("?")[2],
            )
        except ValueError:
            body = None  # an encoding nobody can read: no operation name, no reading call
        kind = unsafe_kind(compiled.catalog, record.platform, record.host or "", path, body)
        html = wants_html(
            request.method, headers.get("Accept", ""), headers.get("Sec-Fetch-Dest", ""),
            headers.get("X-Requested-With", ""),
        )
        self._decide(flow, compiled, record.subject, kind, html)

    def _decide(
        self, flow: http.HTTPFlow, compiled: Compiled, subject: Subject, kind: RequestKind,
        html: bool,
    ) -> None:
        """Decide a catalog request, record it, and answer a refusal."""
        record = info(flow)
        request = flow.request
        platform = record.platform
        assert platform is not None
        grants = self.grants.active(subject.user) if subject.user else ()
        decision = compiled.access.decide(subject, platform, kind, self.now(), grants)
        path = request.path.split("?", 1)[0]
        record.kind = kind
        record.decision = decision
        if decision.allowed:
            return
        policy = compiled.loaded.policy
        url = f"{request.scheme}://{request.pretty_host}{path}"
        service_url = self.service_url or policy.institution.service_url
        explanation = refusal.explain(policy, decision, record.lang, service_url, url)
        record.generated = "access"
        if html:
            flow.response = refusal.block_page(
                explanation, decision, subject, record.lang, compiled.version, url,
                policy=policy,
            )
        else:
            flow.response = refusal.block_json(explanation, decision, record.lang)

    # -- refusals that are not access decisions ----------------------------------------------

    def _refuse_login(
        self, flow: http.HTTPFlow, compiled: Compiled, outcome: Outcome, lang: str, html: bool
    ) -> None:
        record = info(flow)
        record.generated = "access"
        identity = compiled.loaded.policy.identity
        if outcome.retry_after:
            record.refused = "login-limited"
            flow.response = refusal.login_limited(outcome.retry_after, lang)
        elif schemes := self.clients.identifier.schemes(identity):
            record.refused = outcome.challenge or "login-required"
            flow.response = refusal.login_required(
                identity.realm, outcome.challenge or "", lang, html, schemes=schemes
            )
        else:
            record.refused = "not-identified"
            flow.response = refusal.refused_json(403, "not-identified", "not_identified", lang)

    def _refuse(
        self, flow: http.HTTPFlow, reason: str, status: int, message: str, lang: str
    ) -> None:
        record = info(flow)
        record.refused = reason
        record.generated = "access"
        flow.response = refusal.refused_json(status, reason, message, lang)

    def _refuse_inside(
        self, flow: http.HTTPFlow, host: str, port: int, why: str, lang: str
    ) -> None:
        """Refuse a destination that is plainly inside (an address, ``localhost``, or
        behind an upstream proxy a name resolving inside); other names are judged when
        the connection opens (``server_connect``)."""
        subject = info(flow).subject
        log.warning("destination refused", extra={"event": {
            "event": "destination-refused", "host": host, "port": port, "reason": why,
            "user": subject.user if subject else None,
        }})
        self._refuse(flow, "destination", 403, "destination_refused", lang)

    def _refuse_mismatch(
        self, flow: http.HTTPFlow, compiled: Compiled, subject: Subject, why: str, lang: str
    ) -> None:
        """A request whose names disagree: 421, logged with the platform it aimed at."""
        record = info(flow)
        request = flow.request
        # The platform it aimed at: its Host header's (or :authority's), else the tunnel's.
        names = [*request.headers.get_all("Host"), request.authority, request.host,
                 flow.server_conn.address[0] if flow.server_conn.address else ""]
        for name in names:
            parsed = hosts.split_authority(name) if name else None
            match = compiled.catalog.match(parsed[0]) if parsed else None
            if match is not None:
                record.platform, record.host = match.platform, parsed[0] if parsed else None
                grants = self.grants.active(subject.user) if subject.user else ()
                record.kind = RequestKind.write if is_unsafe(request.method) else RequestKind.api
                record.decision = compiled.access.decide(
                    subject, match.platform, record.kind, self.now(), grants
                )
                break
        log.warning("host mismatch", extra={"event": {
            "event": "host-mismatch", "user": subject.user, "platform": record.platform,
            "method": request.method, "reason": why,
        }})
        self._refuse(flow, "host-mismatch", 421, "host_mismatch", lang)

    # -- upstream connections ------------------------------------------------------------------

    async def server_connect(self, data: ServerConnectionHookData) -> None:
        """Judge the addresses a destination resolves to just before mitmproxy connects."""
        await self.destinations.server_connect(data, self._compiled().catalog)

    def _lang(self, accept_language: str | None) -> str:
        """``negotiate`` remembered per distinct Accept-Language value (browsers send few)."""
        lang = self._langs.get(accept_language)
        if lang is None:
            lang = negotiate(accept_language)
            if len(self._langs) >= 1024:
                self._langs.clear()
            self._langs[accept_language] = lang
        return lang


def _take_login(headers: http.Headers) -> str | None:
    """The request's proxy login (the first, if several), removed from the request with
    every other copy: it is ours, never forwarded upstream."""
    logins = headers.get_all("Proxy-Authorization")
    if not logins:
        return None
    del headers["Proxy-Authorization"]
    return logins[0]


def _options_error(message: str) -> Exception:
    error: Exception = exceptions.OptionsError(message)  # type: ignore[no-untyped-call]
    return error


def _store_directory(url: str) -> UserDirectory:
    from proxy.store import StoreError, open_store

    try:
        return StoreDirectory(open_store(url))
    except (StoreError, ValueError, OSError) as exc:
        raise _options_error(f"sargs_database: cannot open {url!r}: {exc}") from None

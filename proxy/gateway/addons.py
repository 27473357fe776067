"""The Sargs add-ons, in order, and the mitmproxy options ``sargs run`` always sets.

The add-ons are registered with mitmproxy as the sub-add-ons of one parent (``Sargs``,
whose ``addons`` attribute mitmproxy's add-on manager walks, as it does for its own
add-ons). Order matters: mitmproxy calls each hook on them in list order, and later
add-ons read the flow record earlier ones filled in (``flowinfo.py``). Identity and access
come first, so nothing later sees a request that is refused; the decision log, the event
spool and the metrics read the record when the flow ends.

Also usable as a mitmproxy script: ``mitmdump -s proxy/gateway/addons.py --set
sargs_policy=DIR --set connection_strategy=lazy``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from proxy.checkpool import CheckPool
from proxy.gateway.access import Access, GrantSource, _utcnow
from proxy.gateway.decisionlog import DecisionLog
from proxy.gateway.identity import LOGIN_FAILURES, Identifier, UserDirectory
from proxy.gateway.inject import Inject
from proxy.gateway.lastrefusal import LastRefusals
from proxy.gateway.metrics import GatewayMetrics
from proxy.gateway.negotiate import NegotiateLogins, negotiate_from_settings
from proxy.gateway.posts import Posts
from proxy.gateway.proceed import Proceed
from proxy.gateway.reserved import Reserved
from proxy.gateway.reviewfwd import ReviewForward
from proxy.gateway.sync import GatewaySync
from proxy.runtime import Compiled, PolicyState
from proxy.settings import Settings

log = logging.getLogger("sargs.run")


def make_addons(
    settings: Settings,
    state: PolicyState,
    *,
    directory: UserDirectory | None = None,
    grants: GrantSource | None = None,
    now: Callable[[], datetime] = _utcnow,
    sync: bool | None = None,
    negotiate: NegotiateLogins | None = None,
    check_pool: CheckPool | None = None,
) -> list[object]:
    """The gateway's add-ons for one policy state, first to last, as one parent add-on
    (``master.addons.add(*make_addons(…))``; each is still found by its name,
    ``master.addons.get("gatewaymetrics")``).

    ``negotiate``: Kerberos sign-on (default: from ``settings.kerberos_realms`` and the
    ``ldap_*`` settings, roles from the store's users when no directory is set).
    ``sync``: follow the service's grant bundle and spool decision events for it
    (``proxy/gateway/sync.py``); default: when no ``grants`` are given and
    ``settings.service_url`` is set. ``sargs run`` passes ``sync=True`` (loopback).
    ``check_pool``: where drafts are checked, off the event loop (posts and the reserved
    path's check API); ``sargs run`` passes the service's, so one pool serves both. Without
    one the gateway makes its own (``settings.check_seconds`` of CPU per check) and closes
    it when mitmproxy shuts down.
    """
    syncer = None
    if sync or (sync is None and grants is None and settings.service_url):
        syncer = GatewaySync.from_settings(
            settings, now=now, policy_version=lambda: state.current.version
        )
        grants = syncer.grants
    metrics = GatewayMetrics.from_settings(settings)  # /metrics on its own port
    metrics.registry.register(LOGIN_FAILURES)  # counted by the Identifier, served here
    if negotiate is None and settings.kerberos_realms:
        negotiate = negotiate_from_settings(settings, state, directory, metrics.registry)
    identifier = Identifier(directory, negotiate=negotiate)
    if syncer is not None:
        identifier.on_failure = syncer.login_failed  # failed proxy logins: audit events
    access = Access(state, grants=grants, now=now, identifier=identifier)
    owned = check_pool is None
    pool = check_pool or CheckPool(lambda: state.current, budget=settings.check_seconds)
    # paths of their own under /__sargs/, answered when Reserved asks (reserved.py)
    proceed = Proceed(syncer, lambda: state.current, max_body_bytes=settings.max_body_bytes)
    reviews = ReviewForward(syncer, max_body_bytes=settings.max_body_bytes)
    refusals = LastRefusals(now=now)
    addons: list[object] = [
        access,
        Reserved(lambda: state.current, max_body_bytes=settings.max_body_bytes, now=now,
                 check=pool.check, answerers=(proceed, reviews, refusals)),
        Inject(lambda: state.current),
        Posts(lambda: state.current, now=now, check=pool.check,
              allowances=syncer.allowances if syncer is not None else None,
              events=syncer.record if syncer is not None else None,
              service_url=settings.public_service_url, on_refusal=refusals.remember),
        DecisionLog(lambda: state.current.version),
    ]
    if syncer is not None:
        addons.append(syncer)  # grants for access; events when flows end
    addons.append(metrics)
    return [Sargs(addons, pool if owned else None)]


class Sargs:
    """The Sargs add-ons as mitmproxy sub-add-ons of one parent.

    mitmproxy walks a parent's ``addons`` for every event, in order, and registers each by
    name. One parent rather than seven top-level add-ons, because mitmproxy's dispatch
    costs per top-level add-on and event (an error guard, a coroutine and two generators,
    then the same again for the ``update`` event after every flow event): with seven that
    cost ~7 % of a proxied request (``./scripts/bench gateway``). As with any add-on, an
    error in one hook is logged by mitmproxy; the later Sargs add-ons skip that event.

    ``pool``: a check pool the gateway made for itself, closed (its workers stopped) when
    mitmproxy shuts down; a pool shared with the service is the service's to close.
    """

    name = "sargs"

    def __init__(self, addons: list[object], pool: CheckPool | None = None) -> None:
        self.addons = addons
        self.pool = pool

    async def done(self) -> None:
        if self.pool is not None:
            await self.pool.close()


def mitmproxy_options(settings: Settings, confdir: Path) -> dict[str, Any]:
    """Options the gateway always runs with (``--set`` may still override them)."""
    options: dict[str, Any] = {
        "confdir": str(confdir),
        # Never dial the real host at CONNECT: decide first, connect when a request needs it.
        "connection_strategy": "lazy",
        # Host certificates name only the host the browser asked for (SNI, CONNECT host),
        # never names copied from the platform's own certificate: those often reach past
        # the catalog's domains (a CDN's, a sister brand's), and one such name outside the
        # CA's name constraints makes browsers refuse the whole certificate. With the lazy
        # strategy nothing is copied anyway (no upstream TLS before the client's); this
        # keeps it so under ``--set connection_strategy=eager`` (docs/gateway.md, "The CA").
        "upstream_cert": False,
        "listen_host": settings.gateway_host,
        "listen_port": settings.gateway_port,
    }
    if settings.upstream_proxy:
        options["mode"] = [f"upstream:{settings.upstream_proxy}"]
    return options


def install_ca(settings: Settings, confdir: Path, compiled: Compiled | None = None) -> Path:
    """Put the interception CA where mitmproxy reads it; return the certificate browsers
    must trust.

    The institution's CA (``settings.ca_cert``/``ca_key``) when it gives one; otherwise
    Sargs' own, named after the institution and constrained to the catalog's domains
    (``proxy/ca.py``), made once when ``compiled`` (the policy in force) is given and
    kept afterwards. mitmproxy reads ``mitmproxy-ca.pem`` (private key then certificate,
    PEM) from its confdir; without ``compiled`` and without an institution CA it would
    generate an unconstrained one of its own there (tests only).
    """
    confdir.mkdir(parents=True, exist_ok=True)
    cert_path = confdir / "mitmproxy-ca-cert.pem"
    if settings.ca_cert is None and settings.ca_key is None:
        if compiled is not None:
            _ensure_ca(confdir, compiled)
        return cert_path
    if settings.ca_cert is None or settings.ca_key is None:
        raise ValueError("SARGS_CA_CERT and SARGS_CA_KEY must be given together")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(settings.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(settings.ca_key.read_bytes(), password=None)
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ValueError(f"{settings.ca_key} is not the private key of {settings.ca_cert}")
    combined = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)
    ca_file = confdir / "mitmproxy-ca.pem"
    if not ca_file.exists() or ca_file.read_bytes() != combined:
        ca_file.touch(mode=0o600)
        ca_file.write_bytes(combined)
        ca_file.chmod(0o600)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_path.write_bytes(cert_pem)
        (confdir / "mitmproxy-ca-cert.cer").write_bytes(cert_pem)
        # Files generated for a previous CA would mislead whoever installs them.
        for stale in ("mitmproxy-ca.p12", "mitmproxy-ca-cert.p12"):
            (confdir / stale).unlink(missing_ok=True)
    return cert_path


def _ensure_ca(confdir: Path, compiled: Compiled) -> None:
    """Sargs' CA in ``confdir``, made at first run; says when the one there cannot sign
    for everything the catalog lists now."""
    from proxy import ca

    made = ca.ensure_ca(confdir, compiled.loaded.policy.institution.name,
                        compiled.catalog.domains())
    if made.created:
        log.info("made the interception CA %s (name constraints: the catalog's domains)",
                 made.cert_path)
    elif not made.constrained:
        log.warning("the CA in %s may sign for any name (no name constraints): `sargs ca "
                    "regenerate` makes one limited to the catalog", confdir)
    elif made.missing:
        log.warning("the CA cannot sign for %s (added to the catalog since): `sargs ca "
                    "regenerate`, then hand the new certificate out", ", ".join(made.missing))


# ``mitmdump -s proxy/gateway/addons.py``: the access addon reads its options.
addons = [Access()]

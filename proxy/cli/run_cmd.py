"""``sargs run``: the gateway (mitmproxy, in-process) and the service (aiohttp) in one loop.

Both share one ``PolicyState``: a policy change picked up by the gateway's watcher is
what the service serves too. SIGINT/SIGTERM stop both cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from proxy.settings import Settings

log = logging.getLogger("sargs.run")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="start the gateway (proxy) and the service",
        description="Start the Sargs gateway (mitmproxy with the Sargs addons) and the "
        "service in one process. Settings come from SARGS_* variables; flags override them.",
    )
    parser.add_argument("--policy", type=Path, help="policy directory (SARGS_POLICY)")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="gateway address (default 127.0.0.1:8080)")
    parser.add_argument("--service", metavar="HOST:PORT",
                        help="service address (default 127.0.0.1:8081)")
    parser.add_argument(
        "--set", dest="options", action="append", default=[], metavar="NAME=VALUE",
        help="set a mitmproxy option (repeatable), e.g. --set mode=upstream:http://proxy:3128"
        " or --set map_remote=…; 'mitmdump --options' lists them",
    )
    parser.add_argument(
        "--demo-users", action="store_true",
        help="when the store has no users, create one per role with a random password "
        "and print the logins",
    )
    parser.add_argument(
        "--only", choices=("gateway", "service"),
        help="run one part only (several gateways and service nodes: docs/scaling.md); a "
        "gateway follows the service at SARGS_SERVICE_URL with SARGS_GATEWAY_TOKEN",
    )
    parser.set_defaults(handler=_run)


def _address(value: str, flag: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SystemExit(f"sargs run: {flag} wants HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.policy:
        overrides["policy"] = args.policy
    if args.listen:
        overrides["gateway_host"], overrides["gateway_port"] = _address(args.listen, "--listen")
    if args.service:
        overrides["service_host"], overrides["service_port"] = _address(args.service, "--service")
    return Settings(**overrides)


def _run(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from proxy.gateway import decisionlog
    from proxy.gatewaytoken import gateway_token
    from proxy.logs import setup_logging
    from proxy.policy.loader import PolicyError
    from proxy.runtime import PolicyState

    settings = _settings(args)
    # Our records as JSON lines (for a SIEM) at the chosen level, to LOG_FILE or stderr.
    setup_logging(settings)
    decisionlog.configure(settings.log_file)
    try:
        state = PolicyState(settings.policy)
    except PolicyError as exc:
        print(f"sargs run: the policy cannot be used:\n{exc}", file=sys.stderr)
        return 1
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    # The token gateways and service share: SARGS_GATEWAY_TOKEN, else generated once into
    # VAR_DIR/gateway.token; set here so the gateway's sync client sends what the service
    # (same var dir) expects.
    settings = settings.model_copy(update={"gateway_token": SecretStr(gateway_token(settings))})
    try:
        return asyncio.run(_serve(settings, state, args.options, args.demo_users,
                                  getattr(args, "only", None)))
    except KeyboardInterrupt:  # pragma: no cover - the signal handler normally wins
        return 0


def _open_directory(settings: Settings) -> tuple[Any, Any]:
    from proxy.gateway.identity import StoreDirectory
    from proxy.store.db import open_configured

    store = open_configured(settings)
    return store, StoreDirectory(store)


DEMO_FILE = "demo-logins.txt"


def _demo_users(store: Any, roles: list[str], var_dir: Path) -> list[tuple[str, str, str]]:
    """On an empty store: one demo login per policy role plus an approver, remembered in
    ``VAR_DIR/demo-logins.txt`` (mode 0600) so later runs can print them again."""
    from proxy.store.users import add_user, list_users

    remembered = var_dir / DEMO_FILE
    if list_users(store):
        if not remembered.exists():
            return []
        rows = [line.split("\t") for line in remembered.read_text().splitlines()]
        return [(r[0], r[1], r[2]) for r in rows if len(r) == 3]
    created = []
    wanted = [(f"{role}-demo", [role]) for role in roles]
    wanted.append(("approver-demo", ["approver", *(["communicator"] if "communicator" in roles
                                                   else [])]))
    for name, user_roles in wanted:
        password = secrets.token_urlsafe(9)
        add_user(store, name, password, user_roles, actor="sargs run --demo-users")
        created.append((name, password, "+".join(user_roles)))
    remembered.touch(mode=0o600)
    remembered.write_text("".join(f"{n}\t{p}\t{r}\n" for n, p, r in created))
    return created


async def _serve_service(settings: Settings, state: Any, demo: bool = False) -> int:
    """``--only service``: the service alone until SIGINT/SIGTERM (with ``--demo-users``,
    the demo logins are made and printed first, as for both parts)."""
    from aiohttp import web

    from proxy.service.app import create_app
    from proxy.service.check import CHECKPOOL
    from proxy.service.keys import STORE
    from proxy.store.db import open_configured

    app = create_app(settings, state)
    logins: list[tuple[str, str, str]] = []
    if demo:
        store = await asyncio.to_thread(open_configured, settings)
        app[STORE] = store
        app.on_cleanup.append(lambda _app: asyncio.to_thread(store.close))
        logins = await asyncio.to_thread(_demo_users, store,
                                         list(state.current.loaded.policy.roles),
                                         settings.var_dir)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    _warm_checks(runner.app[CHECKPOOL])
    try:
        await web.TCPSite(runner, settings.service_host, settings.service_port).start()
    except OSError as exc:
        print(f"sargs run: service: cannot listen on {settings.service_host}:"
              f"{settings.service_port}: {exc}", file=sys.stderr)
        await runner.cleanup()
        return 1
    print(f"Sargs service on {settings.public_service_url}", flush=True)
    if logins:
        print(f"  Demo logins ({settings.public_service_url}/login; kept in "
              f"{settings.var_dir / DEMO_FILE}):", flush=True)
        for name, password, role in logins:
            print(f"    {name} / {password}   (role {role})", flush=True)
    elif demo:
        print("  Demo logins: none made (the store has users already and no "
              f"{settings.var_dir / DEMO_FILE})", flush=True)
    print("  Stop with Ctrl-C.", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


async def _serve(settings: Settings, state: Any, set_options: list[str], demo: bool,
                 only: str | None = None) -> int:
    if only == "service":
        return await _serve_service(settings, state, demo)
    from aiohttp import web
    from mitmproxy import exceptions
    from mitmproxy.options import Options
    from mitmproxy.tools.dump import DumpMaster

    from proxy.checkpool import CheckPool
    from proxy.gateway.addons import install_ca, make_addons, mitmproxy_options
    from proxy.service.app import create_app
    from proxy.service.check import CHECKPOOL

    confdir = (settings.var_dir / "mitmproxy").resolve()
    try:
        # The institution's CA, else ours (constrained to the catalog), made at first run.
        ca_cert = install_ca(settings, confdir, state.current)
    except (OSError, ValueError) as exc:
        print(f"sargs run: CA: {exc}", file=sys.stderr)
        return 1
    store, directory = await asyncio.to_thread(_open_directory, settings)
    logins = (await asyncio.to_thread(_demo_users, store, list(state.current.loaded.policy.roles),
                                      settings.var_dir)
              if demo else [])

    options = mitmproxy_options(settings, confdir)
    opts: Any = Options(
        listen_host=options.pop("listen_host"),
        listen_port=options.pop("listen_port"),
        confdir=options.pop("confdir"),
    )
    # One check pool for the service's check API, the gateway's post checks and its
    # reserved path: the service's (its cleanup closes it); a gateway alone makes its own.
    runner = web.AppRunner(create_app(settings, state), access_log=None)
    if only != "gateway":
        await runner.setup()
        pool = runner.app[CHECKPOOL]
    else:
        pool = CheckPool(lambda: state.current, budget=settings.check_seconds)
    _warm_checks(pool)

    async def cleanup() -> None:
        if only != "gateway":
            await runner.cleanup()
        else:
            await pool.close()
        await asyncio.to_thread(store.close)

    master: Any = DumpMaster(opts, with_termlog=True, with_dumper=False)
    # The gateway follows the service's grant bundle, over loopback when both run here.
    master.addons.add(*make_addons(settings, state, directory=directory, sync=True,
                                   check_pool=pool))
    try:
        opts.update(**options, sargs_policy=str(state.directory),
                    sargs_service_url=_service_url(settings))
        if set_options:
            opts.set(*set_options)
    except exceptions.OptionsError as exc:
        print(f"sargs run: {exc}", file=sys.stderr)
        await cleanup()
        return 2

    try:
        if only != "gateway":
            await web.TCPSite(runner, settings.service_host, settings.service_port).start()
    except OSError as exc:
        print(f"sargs run: service: cannot listen on {settings.service_host}:"
              f"{settings.service_port}: {exc}", file=sys.stderr)
        await cleanup()
        return 1

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    task = asyncio.create_task(master.run())
    proxyserver: Any = master.addons.get("proxyserver")
    for _ in range(500):
        if (proxyserver.listen_addrs() and ca_cert.exists()) or task.done():
            break
        await asyncio.sleep(0.01)
    listening = bool(proxyserver.listen_addrs())
    if listening:
        _banner(settings, state, proxyserver.listen_addrs()[0], ca_cert, logins)
    else:
        print(f"sargs run: the gateway could not listen on {settings.gateway_host}:"
              f"{settings.gateway_port} (see the log above)", file=sys.stderr)
        master.shutdown()
    try:
        await task
    finally:
        if listening:
            await proxyserver.servers.update([])
        await cleanup()
    return 0 if listening else 1


_WARMING: set[asyncio.Task[None]] = set()


def _warm_checks(pool: Any) -> None:
    """Start the check workers and their engines in the background now, so the first
    drafts staff type are not the ones that wait for it (``proxy/checkpool.py``)."""
    task = asyncio.create_task(pool.start())
    _WARMING.add(task)
    task.add_done_callback(_warmed)


def _warmed(task: asyncio.Task[None]) -> None:
    _WARMING.discard(task)
    if not task.cancelled() and task.exception() is not None:  # the first check retries
        log.warning("the check workers did not start: %s", task.exception())


def _service_url(settings: Settings) -> str:
    """For block-page links: SARGS_SERVICE_URL; else where this service listens when that
    is not the default; else empty (the policy's institution.service_url)."""
    if settings.service_url:
        return settings.service_url
    defaults = Settings.model_fields
    if (settings.service_host, settings.service_port) != (
        defaults["service_host"].default, defaults["service_port"].default
    ):
        return settings.public_service_url
    return ""


def _banner(settings: Settings, state: Any, address: tuple[Any, ...], ca_cert: Path,
            logins: list[tuple[str, str, str]]) -> None:
    host, port = address[0], address[1]
    proxy = f"http://{host}:{port}"
    service = settings.public_service_url
    policy = state.current.loaded.policy
    lines = [
        "",
        f"Sargs is running: {policy.name} ({state.current.version})",
        f"  Proxy (gateway): {proxy}   set it as the browser's HTTP and HTTPS proxy",
        f"                   (or use the PAC file {service}/proxy.pac)",
        f"  CA certificate:  {ca_cert}",
        f"                   trust it in the browser (Settings > Certificates > Authorities >"
        f" Import), or download it from {service}/ca",
        f"  Service:         {service}",
    ]
    if logins:
        lines.append(f"  Demo logins (the proxy and {service}/login ask for them; "
                     f"kept in {settings.var_dir / DEMO_FILE}):")
        lines += [f"    {name} / {password}   (role {role})" for name, password, role in logins]
        name, password, _ = next(
            (entry for entry in logins if entry[2] == "staff"), logins[0]
        )
        lines.append(
            f"  Try: curl -x {proxy} -U {name}:{password} --cacert {ca_cert} "
            "https://www.tiktok.com/   (blocked for staff: the block page)"
        )
    else:
        lines.append("  Logins: the users in the store (`sargs user list`; add with "
                     "`sargs user add NAME --role staff`)")
    lines += ["  Stop with Ctrl-C.", ""]
    print("\n".join(lines), flush=True)

"""Sargs gateways and service nodes as child processes, for multi-node and crash tests.

mitmproxy keeps its running master in a global (one gateway per process), and a crash test
must be able to SIGKILL a service: so each node is a process of its own::

    python -m tests.support.nodes gateway --var-dir D --service-url URL --token T \
        --site-port P --users '{"ivo": ["pw", ["intern"]]}' [--policy DIR] [--id NAME]
    python -m tests.support.nodes service --var-dir D --database URL --token T --port N

Each prints ``READY <port>`` on standard output once listening, then runs until SIGTERM
(or SIGKILL). Gateways send catalog hosts to the local fake site (``LocalSites``) and
refuse every non-loopback upstream, exactly like the in-process harness.

From pytest: ``async with node_process(...) as node:`` starts one and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.settings import ROOT

EXAMPLE_POLICY = ROOT / "policies" / "institutions" / "example"


# --- in the child ---------------------------------------------------------------------------


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _gateway(args: argparse.Namespace) -> None:
    from pydantic import SecretStr

    from proxy.gateway.access import _utcnow
    from proxy.gateway.addons import make_addons
    from proxy.runtime import PolicyState
    from proxy.settings import Settings
    from tests.support.gateway import running_gateway

    users = {name: (pw, roles) for name, (pw, roles) in json.loads(args.users).items()}
    settings = Settings(policy=args.policy, var_dir=args.var_dir, service_url=args.service_url,
                        gateway_token=SecretStr(args.token), gateway_id=args.id,
                        gateway_metrics_port=0)

    def make(_settings: Settings, state: PolicyState, **kw: Any) -> list[object]:
        kw["now"] = _utcnow  # the real clock: grants carry real expiry times
        return make_addons(settings, state, sync=True, **kw)

    async with running_gateway(args.var_dir, args.site_port, policy=args.policy, users=users,
                               make=make) as gw:
        print(f"READY {gw.port}", flush=True)
        await _until_terminated()


async def _service(args: argparse.Namespace) -> None:
    from aiohttp import web
    from pydantic import SecretStr

    from proxy.service.app import create_app
    from proxy.settings import Settings

    settings = Settings(policy=args.policy, var_dir=args.var_dir, database_url=args.database,
                        gateway_token=SecretStr(args.token), service_port=args.port)
    runner = web.AppRunner(create_app(settings), access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, reuse_address=True)
    await site.start()
    server: Any = site._server
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await _until_terminated()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.nodes")
    sub = parser.add_subparsers(dest="kind", required=True)
    gw = sub.add_parser("gateway")
    gw.add_argument("--service-url", required=True)
    gw.add_argument("--site-port", type=int, required=True)
    gw.add_argument("--users", default="{}")
    gw.add_argument("--id", default="gateway")
    svc = sub.add_parser("service")
    svc.add_argument("--database", required=True)
    svc.add_argument("--port", type=int, default=0)
    for p in (gw, svc):
        p.add_argument("--var-dir", type=Path, required=True)
        p.add_argument("--policy", type=Path, default=EXAMPLE_POLICY)
        p.add_argument("--token", default="")
    args = parser.parse_args(argv)
    args.var_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_gateway(args) if args.kind == "gateway" else _service(args))
    return 0


# --- in the test ----------------------------------------------------------------------------


@dataclass
class Node:
    process: asyncio.subprocess.Process
    port: int
    var_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        """A gateway's CA (for clients going through it)."""
        return self.var_dir / "mitmproxy" / "mitmproxy-ca-cert.pem"

    def kill(self) -> None:
        """SIGKILL: no clean-up at all (a crash)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


def _log_file(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # closed by the caller's with


async def start_node(kind: str, var_dir: Path, *args: str, ready_within: float = 60) -> Node:
    log = var_dir / f"{kind}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SARGS_CONFIG", None)
    with _log_file(log) as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.nodes", kind, "--var-dir", str(var_dir), *args,
            stdout=asyncio.subprocess.PIPE, stderr=err, cwd=str(ROOT), env=env,
        )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), ready_within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"{kind} did not start: {log.read_text()[-3000:]}") from None
    if not line.startswith(b"READY "):
        await process.wait()
        raise RuntimeError(f"{kind} did not start: {log.read_text()[-3000:]}")
    return Node(process, int(line.split()[1]), var_dir, log)


async def stop_node(node: Node) -> None:
    if node.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            node.process.terminate()
        try:
            await asyncio.wait_for(node.process.wait(), 20)
        except TimeoutError:
            node.kill()
            await node.process.wait()


@contextlib.asynccontextmanager
async def node_process(kind: str, var_dir: Path, *args: str) -> AsyncIterator[Node]:
    node = await start_node(kind, var_dir, *args)
    try:
        yield node
    finally:
        await stop_node(node)


if __name__ == "__main__":
    sys.exit(main())

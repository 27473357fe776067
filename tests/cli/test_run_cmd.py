"""``sargs run`` as a user starts it: a subprocess, its banner, a request, Ctrl-C."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.settings import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def requests_through(gateway: int, service: int, token: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{service}/healthz") as r:
            assert r.status == 200
        # vk is denied for everyone: answered by the gateway, no upstream needed
        async with session.get(
            "http://vk.com/", proxy=f"http://127.0.0.1:{gateway}",
            headers={"Proxy-Authorization": f"Basic {token}", "Accept": "text/html"},
        ) as r:
            assert r.status == 403
            assert "VK is blocked" in await r.text()
        async with session.get("http://vk.com/", proxy=f"http://127.0.0.1:{gateway}") as r:
            assert r.status == 407


@pytest.mark.slow
def test_sargs_run_serves_gateway_and_service_and_stops_on_sigint(tmp_path: Path) -> None:
    gateway, service = free_port(), free_port()
    env = {**os.environ, "SARGS_VAR_DIR": str(tmp_path / "var"),
           "SARGS_GATEWAY_METRICS_PORT": "0", "SARGS_LOG_FILE": str(tmp_path / "decisions.log")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli.main", "run", "--demo-users",
         "--listen", f"127.0.0.1:{gateway}", "--service", f"127.0.0.1:{service}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    try:
        banner = []
        for _ in range(400):  # bounded: the banner is a few dozen lines
            line = proc.stdout.readline()
            if not line:
                break
            banner.append(line)
            if "Stop with Ctrl-C" in line:
                break
        text = "".join(banner)
        assert f"Proxy (gateway): http://127.0.0.1:{gateway}" in text
        ca = tmp_path / "var" / "mitmproxy" / "mitmproxy-ca-cert.pem"
        assert str(ca) in text
        assert ca.exists()
        assert f"Service:         http://127.0.0.1:{service}" in text
        match = re.search(r"staff-demo / (\S+)", text)
        assert match, text
        token = base64.b64encode(f"staff-demo:{match.group(1)}".encode()).decode()

        asyncio.run(requests_through(gateway, service, token))
        assert '"platform": "vk"' in (tmp_path / "decisions.log").read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
    assert code == 0


def test_demo_logins_include_an_approver_and_are_shown_again(tmp_path: Path) -> None:
    from proxy.cli.run_cmd import _demo_users
    from proxy.store import open_store
    from proxy.store.users import verify_password

    store = open_store(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        first = _demo_users(store, ["staff", "communicator"], tmp_path)
        assert [name for name, _, _ in first] == [
            "staff-demo", "communicator-demo", "approver-demo"]
        approver = verify_password(store, "approver-demo", first[-1][1])
        assert approver is not None
        assert "approver" in approver.roles
        assert (tmp_path / "demo-logins.txt").stat().st_mode & 0o777 == 0o600
        # A later run creates nobody and prints the same logins.
        assert _demo_users(store, ["staff", "communicator"], tmp_path) == first
        (tmp_path / "demo-logins.txt").unlink()
        assert _demo_users(store, ["staff"], tmp_path) == []
    finally:
        store.close()


def _start(args: list[str], env: dict[str, str], ready: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli.main", "run", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    seen = []
    for _ in range(400):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if ready in line:
            break
    return proc, "".join(seen)


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.slow
def test_only_service_and_only_gateway_run_as_separate_processes(tmp_path: Path) -> None:
    """The split the systemd units use: a service node, and a gateway that follows it."""
    import aiohttp

    gateway, service = free_port(), free_port()
    base = {**os.environ, "SARGS_GATEWAY_METRICS_PORT": "0",
            "SARGS_SERVICE_URL": f"http://127.0.0.1:{service}",
            "SARGS_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    svc, svc_out = _start(["--only", "service", "--service", f"127.0.0.1:{service}"],
                          {**base, "SARGS_VAR_DIR": str(tmp_path / "svc")}, "Sargs service on")
    try:
        assert f"http://127.0.0.1:{service}" in svc_out
        gw, gw_out = _start(["--only", "gateway", "--listen", f"127.0.0.1:{gateway}"],
                            {**base, "SARGS_VAR_DIR": str(tmp_path / "gw")}, "Stop with Ctrl-C")
        try:
            assert f"Proxy (gateway): http://127.0.0.1:{gateway}" in gw_out

            async def probe() -> None:
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"http://127.0.0.1:{service}/healthz") as r:
                        assert r.status == 200
                    async with session.get("http://vk.com/",
                                           proxy=f"http://127.0.0.1:{gateway}") as r:
                        assert r.status == 407  # the gateway asks for a login

            asyncio.run(probe())
            assert (tmp_path / "gw" / "mitmproxy" / "mitmproxy-ca-cert.pem").exists()
            assert not (tmp_path / "svc" / "mitmproxy").exists()
        finally:
            assert _stop(gw) == 0
    finally:
        assert _stop(svc) == 0

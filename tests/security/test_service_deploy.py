"""Deployment as documented: the split systemd units share one user and state directory; a
service-only node makes demo logins when asked and finds the gateway's CA."""

from __future__ import annotations

import asyncio
import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from mitmproxy.certs import CertStore

from proxy.settings import ROOT

DEPLOY = ROOT / "scripts" / "deploy"
UNITS = ("sargs-gateway.service", "sargs-service.service", "sargs.service")


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / name)
    return parser


def test_units_share_one_static_user_and_state_directory() -> None:
    services = [_unit(name)["Service"] for name in UNITS]
    for name, service in zip(UNITS, services, strict=True):
        assert service.get("DynamicUser", "no") != "yes", name
        assert (service["User"], service["Group"]) == ("sargs", "sargs"), name
        assert service["StateDirectory"] == "sargs", name
        assert service["Environment"].count("SARGS_VAR_DIR=/var/lib/sargs") or \
            "SARGS_VAR_DIR=/var/lib/sargs" in (DEPLOY / name).read_text(), name
    sysusers = (DEPLOY / "sargs.sysusers").read_text()
    assert re.search(r"^u sargs - .* /var/lib/sargs$", sysusers, re.MULTILINE)


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    """The units load in systemd (a throwaway root holding them, the sysusers entry and an
    executable where ExecStart points); systemd itself need not run here."""
    analyze = shutil.which("systemd-analyze")
    units = Path("/usr/lib/systemd/system")
    if analyze is None or not (units / "sysinit.target").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze (Debian package systemd) is needed here")
        pytest.skip("systemd-analyze is not installed")
    root = tmp_path / "root"
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        shutil.copy(DEPLOY / name, root / "etc/systemd/system" / name)
    (root / "etc/sysusers.d").mkdir(parents=True)
    shutil.copy(DEPLOY / "sargs.sysusers", root / "etc/sysusers.d/sargs.conf")
    sargs = root / "opt/sargs/.venv/bin/sargs"
    sargs.parent.mkdir(parents=True)
    sargs.write_text("#!/bin/sh\n")
    sargs.chmod(0o755)
    result = subprocess.run([analyze, "verify", "--man=no", f"--root={root}", *UNITS],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    users = subprocess.run(["systemd-sysusers", "--dry-run", f"--root={root}"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert users.returncode == 0, users.stderr
    assert "Creating user 'sargs'" in users.stdout + users.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "proxy.cli.main", "run", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for _ in range(400):  # bounded
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "Stop with Ctrl-C" in line:
            break
    return proc, "".join(seen)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()


async def _login_and_fetch_ca(port: int, name: str, password: str) -> tuple[int, bytes]:
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as s:
        r = await s.get(base + "/api/v1/me",
                        headers={"Authorization": aiohttp.encode_basic_auth(name, password)})
        assert r.status == 200, await r.text()
        assert (await r.json())["user"] == name
        r = await s.get(base + "/ca.pem")
        return r.status, await r.read()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["shared-var-dir", "service-ca-file"])
def test_service_only_node_makes_demo_logins_and_serves_the_gateways_ca(
        tmp_path: Path, where: str) -> None:
    gateway_var = tmp_path / "gateway-var"
    CertStore.from_store(gateway_var / "mitmproxy", "mitmproxy", 2048)  # as the gateway does
    ca = gateway_var / "mitmproxy" / "mitmproxy-ca-cert.pem"
    port = _free_port()
    env = {**os.environ, "SARGS_SERVICE_PORT": str(port), "SARGS_GATEWAY_METRICS_PORT": "0"}
    if where == "shared-var-dir":
        env["SARGS_VAR_DIR"] = str(gateway_var)
    else:  # a service node on another host, given a copy of the gateways' CA
        shutil.copy(ca, tmp_path / "institution-ca.pem")
        env["SARGS_VAR_DIR"] = str(tmp_path / "service-var")
        env["SARGS_SERVICE_CA_FILE"] = str(tmp_path / "institution-ca.pem")
    proc, banner = _start(["--only", "service", "--demo-users"], env)
    try:
        found = re.search(r"staff-demo / (\S+)", banner)
        assert found, banner
        status, body = asyncio.run(_login_and_fetch_ca(port, "staff-demo", found.group(1)))
        assert status == 200
        assert body == ca.read_bytes()
    finally:
        _stop(proc)

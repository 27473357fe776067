"""Running wrk and reading its report; a process's CPU time; a free loopback port.
Shared by the benchmarks."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


@dataclass(frozen=True)
class WrkRun:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: bool
    report: str


def on_cpu(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that keeps the child process on one CPU (None: anywhere)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def run_wrk(port: int, lua: str, seconds: float, connections: int,
            cpu: int | None = None) -> WrkRun:
    """``wrk -t1 -cN -dS --latency`` against 127.0.0.1:port with the given Lua script
    (on CPU ``cpu`` alone, when given)."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".lua", delete=False) as f:
        f.write(lua)
        path = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
             "-s", path, f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
            preexec_fn=on_cpu(cpu),
        ).stdout
    finally:
        os.unlink(path)
    rps, total = _RPS.search(out), _TOTAL.search(out)
    percentiles = {p: float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(out)}
    if rps is None or total is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"cannot read wrk's report:\n{out}")
    non_2xx = _NON_2XX.search(out)
    return WrkRun(float(rps.group(1)), percentiles["50"], percentiles["99"],
                  int(total.group(1)), int(non_2xx.group(1)) if non_2xx else 0,
                  "Socket errors" in out, out)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

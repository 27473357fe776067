"""A server process under callgrind whose instructions are counted only around measured
runs. Shared by the gateway and the compliance benchmarks.

``valgrind --tool=callgrind --instr-atstart=no`` runs the process uncounted (start-up and
warm-up cost nothing); ``callgrind_control -i on|off`` (through vgdb) switches counting
around each measured action and ``-d`` dumps its total. Counts repeat within a fraction
of a per cent, where wall-clock figures on a shared machine move by tens of per cent;
kernel time is not counted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


class Callgrind:
    """``python -m MODULE ARGS`` under callgrind; it must print ``ready`` once serving."""

    def __init__(self, name: str, out_dir: Path, module: str, args: list[str],
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.prefix = out_dir / f"callgrind.{name}"
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={self.prefix}.%p",
             sys.executable, "-m", module, *args],
            cwd=ROOT, env=dict(os.environ, PYTHONHASHSEED="0", **(env or {})),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.dumps = 0

    def ready(self) -> None:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"{self.name} under valgrind did not start")

    def _control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(self.proc.pid)], check=True,
                       capture_output=True, timeout=300)

    def count(self, action: Callable[[], object], settle: float = 0.0) -> tuple[int, float]:
        """Instructions executed while ``action`` ran and ``settle`` seconds after it, and
        the wall-clock seconds they took."""
        self._control("-i", "on")
        start = time.perf_counter()
        action()
        time.sleep(settle)
        elapsed = time.perf_counter() - start
        self._control("-i", "off")
        self._control("-d")
        self.dumps += 1
        dump = self.last_dump
        found = _TOTALS.search(dump.read_text(encoding="utf-8", errors="replace"))
        if found is None:
            raise RuntimeError(f"no totals in {dump}")
        return int(found.group(1)), elapsed

    @property
    def last_dump(self) -> Path:
        return Path(f"{self.prefix}.{self.proc.pid}.{self.dumps}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()

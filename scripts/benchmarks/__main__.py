"""``python -m scripts.benchmarks [NAME ...]``: run every benchmark, or the named ones."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

ORDER = ("decide", "gateway")
"""Fixed order first; any other module with a ``main()`` runs after, alphabetically."""


def available() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])]
    names = [n for n in names if not n.startswith("_")]
    return [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}",
              file=sys.stderr)
        return 2
    status = 0
    for name in names:
        module = importlib.import_module(f"scripts.benchmarks.{name}")
        run = getattr(module, "main", None)
        if run is None:
            continue
        print(f"== {name}", flush=True)
        status |= int(run() or 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

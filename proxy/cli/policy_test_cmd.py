"""``sargs policy test DIR``: run the example drafts next to the rules, like ``opa test``.

Prints PASS/FAIL per example (failures say what was missing or unexpected) and a
summary; exits 1 when any example fails. Format: ``proxy.compliance.policytest``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from proxy.compliance.engine import Engine
from proxy.compliance.policytest import run


def register(cmds: Any) -> None:
    parser = cmds.add_parser(
        "test",
        help="run the policy's example drafts (tests/*.yaml, bases' included)",
        description="Run the example drafts in the policy's tests/ directories, and in "
        "those of the policies it extends, against the effective policy.",
    )
    parser.add_argument("dir", nargs="?", help="policy directory (default: the configured one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list passing examples too")
    parser.set_defaults(handler=_test)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _test(args: argparse.Namespace) -> int:
    from proxy.cli.policy_cmd import load_or_exit

    loaded = load_or_exit(args.dir)
    outcomes = run(Engine.from_policy(loaded.policy), loaded.version, loaded.directories)
    if not outcomes:
        print("no policy tests found (tests/*.yaml)", file=sys.stderr)
        return 1
    current = None
    for outcome in outcomes:
        if not outcome.passed or args.verbose:
            if outcome.file != current:
                print(_display(outcome.file))
                current = outcome.file
            print(f"  {'PASS' if outcome.passed else 'FAIL'}: {outcome.name}")
            for problem in outcome.problems:
                print(f"    {problem}")
    failed = sum(not o.passed for o in outcomes)
    files = len({o.file for o in outcomes})
    print("-" * 40)
    summary = f"PASS: {len(outcomes) - failed}/{len(outcomes)}"
    if failed:
        summary += f"  FAIL: {failed}"
    print(f"{summary}  ({files} files, policy {loaded.version})")
    return 1 if failed else 0

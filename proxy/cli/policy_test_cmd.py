"""``sargs policy test DIR``: run the example drafts next to the rules, like ``opa test``.

Prints PASS/FAIL per example (failures say what was expected and what was found, with
positions) and a summary; exits 1 when any example fails or a test file is broken
(file:line: field: problem). Test files marked ``score: true`` are a detection corpus:
they are scored (precision, recall, F1 per rule and language, disguises caught, false
alarms), not failed draft by draft; ``--corpus PATH`` scores more of them (the held-out
corpus), ``--targets`` exits 1 when a corpus misses the detection targets.
Format: ``proxy.compliance.policytest``; scores: ``proxy.compliance.policyscore``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from proxy.cli.loading import load_or_exit
from proxy.compliance.engine import Engine
from proxy.compliance.policyscore import score
from proxy.compliance.policytest import (
    ExampleFile,
    TestFileError,
    example_files,
    read_file,
    run,
)


def register(cmds: Any) -> None:
    parser = cmds.add_parser(
        "test",
        help="run the policy's example drafts (tests/*.yaml, bases' included)",
        description="Run the example drafts in the policy's tests/ directories, and in "
        "those of the policies it extends, against the effective policy. Files marked "
        "'score: true' are scored as a detection corpus.",
    )
    parser.add_argument("dir", nargs="?", help="policy directory (default: the configured one)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list passing examples too, and every draft a corpus got wrong")
    parser.add_argument("--corpus", metavar="PATH", action="append", default=[],
                        help="score this corpus file or directory of *.yaml too (repeatable)")
    parser.add_argument("--targets", action="store_true",
                        help="exit 1 when a corpus misses a detection target")
    parser.set_defaults(handler=_test)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _corpus_paths(spec: str) -> list[Path]:
    path = Path(spec)
    return sorted(path.glob("*.yaml")) if path.is_dir() else [path]


def _test(args: argparse.Namespace) -> int:
    loaded = load_or_exit(args.dir)
    engine = Engine.from_policy(loaded.policy)
    outcomes = run(engine, loaded.version, loaded.directories)
    corpora: list[tuple[str, list[Path]]] = [
        ("policy corpus", [p for p, _ in example_files(loaded.directories) if _is_scored(p)])
    ]
    for spec in args.corpus:
        paths = _corpus_paths(spec)
        if not paths:
            print(f"--corpus {spec}: no *.yaml files there", file=sys.stderr)
            return 1
        corpora.append((spec, paths))
    corpora = [(name, paths) for name, paths in corpora if paths]
    if not outcomes and not corpora:
        print("no policy tests found (tests/*.yaml)", file=sys.stderr)
        return 1
    current = None
    for outcome in outcomes:
        if not outcome.passed or args.verbose:
            if outcome.file != current:
                print(_display(outcome.file))
                current = outcome.file
            where = f" (line {outcome.line})" if outcome.line and not outcome.passed else ""
            print(f"  {'PASS' if outcome.passed else 'FAIL'}: {outcome.name}{where}")
            for problem in outcome.problems:
                print(f"    {problem}")
    failed = sum(not o.passed for o in outcomes)
    missed = 0
    for name, paths in corpora:
        files: list[tuple[Path, ExampleFile]] = []
        for path in paths:
            try:
                files.append((path, read_file(path)))
            except TestFileError as exc:
                print(exc)
                failed += 1
        print("-" * 40)
        print(f"{name}: {', '.join(_display(p) for p in paths)}")
        result = score(engine, loaded.version, files)
        for line in result.report(args.verbose):
            print(line)
        missed += bool(result.unmet())
    print("-" * 40)
    summary = f"PASS: {len(outcomes) - failed}/{len(outcomes)}"
    if failed:
        summary += f"  FAIL: {failed}"
    files_n = len({o.file for o in outcomes})
    print(f"{summary}  ({files_n} files, policy {loaded.version})")
    return 1 if failed or (args.targets and missed) else 0


def _is_scored(path: Path) -> bool:
    try:
        return read_file(path).score
    except TestFileError:
        return False

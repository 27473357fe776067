"""Every example draft shipped in policies/ (every rule, every language, hard negatives)
runs as its own test against the effective policy it belongs to."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.compliance.engine import Engine
from proxy.compliance.policytest import Case, read_file, run_case
from proxy.policy.loader import LoadedPolicy, load
from proxy.settings import ROOT

BASE = ROOT / "policies" / "base"
EXAMPLE = ROOT / "policies" / "institutions" / "example"
_ENGINES: dict[Path, tuple[Engine, LoadedPolicy]] = {}


def _engine(directory: Path) -> tuple[Engine, LoadedPolicy]:
    if directory not in _ENGINES:
        loaded = load(directory)
        _ENGINES[directory] = (Engine.from_policy(loaded.policy), loaded)
    return _ENGINES[directory]


def _cases() -> list[object]:
    out: list[object] = []
    for policy_dir, tests_dir, inherited in (
        (BASE, BASE, False),
        (EXAMPLE, EXAMPLE, False),
        (EXAMPLE, BASE, True),
    ):
        for path in sorted((tests_dir / "tests").glob("*.yaml")):
            spec = read_file(path)
            if spec.score:  # the corpus is scored as a whole: test_corpus.py
                continue
            for case in spec.tests:
                out.append(
                    pytest.param(
                        policy_dir, case, spec.defaults, inherited,
                        id=f"{policy_dir.name}:{path.stem}:{case.name}",
                    )
                )
    return out


@pytest.mark.parametrize(("policy_dir", "case", "defaults", "inherited"), _cases())
def test_example(
    policy_dir: Path, case: Case, defaults: dict[str, object], inherited: bool
) -> None:
    engine, loaded = _engine(policy_dir)
    assert run_case(engine, loaded.version, case, defaults, inherited) == []


def test_every_rule_and_language_has_examples() -> None:
    rules: dict[str, set[str]] = {}
    negatives = 0
    for tests_dir in (BASE, EXAMPLE):
        for path in (tests_dir / "tests").glob("*.yaml"):
            spec = read_file(path)
            if spec.score:
                continue
            for case in spec.tests:
                negatives += not case.expect
                for expected in case.expect:
                    rules.setdefault(expected.rule, set()).add(case.lang or case.name[:2])
    from proxy.compliance.config import RULE_IDS

    assert set(rules) == set(RULE_IDS)
    assert negatives >= 15

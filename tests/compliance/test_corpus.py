"""The detection corpus and the held-out corpus, scored against the example institution.

The targets of issue 13 are asserted here, one test per target and corpus, so CI says which
target a change meets. ``sargs policy test -v`` lists the drafts behind each figure.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from proxy.compliance.engine import Engine
from proxy.compliance.policyscore import (
    DISGUISED_CAUGHT,
    HARD_NEGATIVE_ALARMS,
    MICRO_F1,
    Score,
    score,
)
from proxy.compliance.policytest import DISGUISES, ExampleFile, read_file
from proxy.policy.loader import load
from proxy.settings import ROOT

EXAMPLE = ROOT / "policies" / "institutions" / "example"
CORPORA = {
    "corpus": sorted((EXAMPLE / "tests").glob("corpus-*.yaml")),
    "heldout": sorted((ROOT / "tests" / "corpus" / "heldout").glob("*.yaml")),
}
_SCORES: dict[str, Score] = {}


def _files(name: str) -> list[tuple[Path, ExampleFile]]:
    return [(path, read_file(path)) for path in CORPORA[name]]


def _score(name: str) -> Score:
    if name not in _SCORES:
        loaded = load(EXAMPLE)
        _SCORES[name] = score(Engine.from_policy(loaded.policy), loaded.version, _files(name))
    return _SCORES[name]


@pytest.mark.parametrize(("name", "minimum", "negatives"), [("corpus", 300, 100),
                                                            ("heldout", 100, 25)])
def test_corpus_covers_every_language_and_class(name: str, minimum: int, negatives: int) -> None:
    cases = [(case, path) for path, spec in _files(name) for case in spec.tests]
    assert all(spec.score for _, spec in _files(name))
    assert len(cases) >= minimum
    langs = Counter(case.lang for case, _ in cases)
    assert set(langs) == {"en", "lv", "sv", "sq"}
    assert min(langs.values()) >= len(cases) // 5
    classes = Counter(case.draft_class for case, _ in cases)
    assert set(DISGUISES) <= set(classes)
    assert classes["hard-negative"] >= negatives
    assert classes["plain"] >= 4
    rules = {e.rule for case, _ in cases if case.draft_class == "ordinary" for e in case.expect}
    text_rules = {"classified", "personal-data", "offensive", "partisan", "commercial",
                  "embargo", "speculation"}
    assert text_rules <= rules


@pytest.mark.parametrize("name", ["corpus", "heldout"])
def test_scores_are_reported(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Print the scores into the test log (CI shows where detection stands on every run)."""
    lines = _score(name).report()
    assert lines[0] == f"{len(_score(name).results)} drafts"
    with capsys.disabled():
        print(f"\n--- {name}: " + "\n".join(lines))


def test_heldout_drafts_are_not_in_the_tuning_corpus() -> None:
    tuning = {case.text for _, spec in _files("corpus") for case in spec.tests}
    heldout = [case.text for _, spec in _files("heldout") for case in spec.tests]
    assert [text for text in heldout if text in tuning] == []


@pytest.mark.parametrize("name", ["corpus", "heldout"])
def test_micro_f1_on_ordinary_drafts(name: str) -> None:
    result = _score(name)
    assert result.micro().f1 >= MICRO_F1, "\n".join(result.report())


@pytest.mark.parametrize("name", ["corpus", "heldout"])
def test_disguised_violations_are_caught(name: str) -> None:
    result = _score(name)
    disguised = result.of(*DISGUISES)
    assert result.caught(disguised) / len(disguised) >= DISGUISED_CAUGHT, "\n".join(
        result.report())


@pytest.mark.parametrize("name", ["corpus", "heldout"])
def test_few_false_alarms_on_hard_negatives(name: str) -> None:
    result = _score(name)
    hard = result.of("hard-negative")
    assert result.alarms(hard) / len(hard) <= HARD_NEGATIVE_ALARMS, "\n".join(result.report())


@pytest.mark.parametrize("name", ["corpus", "heldout"])
def test_no_false_alarm_on_plain_posts(name: str) -> None:
    result = _score(name)
    assert result.alarms(result.of("plain")) == 0, "\n".join(result.report(verbose=True))


def test_every_ordinary_violation_of_the_tuning_corpus_is_found() -> None:
    """In the tuning corpus, class 'ordinary' holds forms the base lexicons list: a miss
    there is a regression. (The held-out set's writer never saw the lexicons: its
    misses count in its micro-F1, not one by one.)"""
    result = _score("corpus")
    wrong = [f"{r.case.name}: {r.explain()}" for r in result.of("ordinary")
             if not r.expected <= r.found_rules]
    assert wrong == []

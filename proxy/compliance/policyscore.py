"""Scores of a detection corpus: precision, recall and F1 per rule and per language.

A corpus is a policy test file with ``score: true`` (format: ``proxy.compliance.policytest``).
Each draft is compared with its expected rules at the level of (draft, rule): an expected
rule that is found is a true positive, one that is not is a miss, a rule found but not
expected is a false alarm. Positions are shown in the list of misses and false alarms but
do not change the counts; an expected severity that differs is counted apart (the draft
is not "right", the rule still found).

The targets (issue 13; CI asserts them on the shipped corpora, ``TARGETS``):

- micro-F1 ≥ 0.95 on ordinary drafts (classes ``ordinary`` and ``coverage``);
- ≥ 90 % of disguised violations caught (every expected rule found);
- at most one false alarm per 25 hard negatives (drafts of class ``hard-negative`` with any
  finding);
- no false alarm on plain posts (class ``plain``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from proxy.compliance.engine import Engine
from proxy.compliance.model import Finding
from proxy.compliance.policytest import (
    CLASSES,
    DISGUISES,
    ORDINARY,
    Case,
    ExampleFile,
    check,
    describe,
)

MICRO_F1 = 0.95
DISGUISED_CAUGHT = 0.90
HARD_NEGATIVE_ALARMS = 1 / 25
PLAIN_ALARMS = 0


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


@dataclass(frozen=True)
class Result:
    """One draft: what was expected and what the engine found."""

    file: Path
    case: Case
    found: tuple[Finding, ...]
    error: str = ""

    @property
    def lang(self) -> str:
        return self.case.lang or "?"

    @property
    def expected(self) -> set[str]:
        return {e.rule for e in self.case.expect}

    @property
    def found_rules(self) -> set[str]:
        return {f.rule for f in self.found}

    def counts(self) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        for rule in self.expected | self.found_rules:
            c = out.setdefault(rule, Counts())
            if rule in self.expected and rule in self.found_rules:
                c.tp = 1
            elif rule in self.expected:
                c.fn = 1
            else:
                c.fp = 1
        return out

    def wrong_severities(self) -> list[str]:
        """Expected rules found with another severity than the one the draft names."""
        out = []
        for e in self.case.expect:
            found = {f.severity for f in self.found if f.rule == e.rule}
            if e.severity is not None and found and e.severity not in found:
                out.append(f"{e.rule}: severity {'/'.join(sorted(found))}, "
                           f"expected {e.severity.value}")
        return out

    @property
    def correct(self) -> bool:
        return not self.error and self.expected == self.found_rules and not self.wrong_severities()

    def explain(self) -> list[str]:
        """Expected vs found, with the positions and text of what was found."""
        lines = [f"expected: {', '.join(sorted(self.expected)) or 'nothing'}"]
        if self.error:
            return [*lines, self.error]
        lines += [f"found: {describe(f, self.case.text)}" for f in self.found]
        if not self.found:
            lines.append("found: nothing")
        return lines + self.wrong_severities()


@dataclass
class Score:
    results: list[Result] = field(default_factory=list)

    def _sum(self, results: Iterable[Result], key: str) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        for r in results:
            for rule, c in r.counts().items():
                out.setdefault(rule if key == "rule" else r.lang, Counts()).add(c)
        return dict(sorted(out.items()))

    def by_rule(self) -> dict[str, Counts]:
        return self._sum(self.results, "rule")

    def by_lang(self) -> dict[str, Counts]:
        return self._sum(self.results, "lang")

    def micro(self, classes: tuple[str, ...] = ORDINARY) -> Counts:
        total = Counts()
        for r in self.results:
            if r.case.draft_class in classes:
                for c in r.counts().values():
                    total.add(c)
        return total

    def of(self, *classes: str) -> list[Result]:
        return [r for r in self.results if r.case.draft_class in classes]

    def caught(self, results: list[Result]) -> int:
        """Drafts whose every expected rule was found."""
        return sum(not r.error and r.expected <= r.found_rules for r in results)

    def alarms(self, results: list[Result]) -> int:
        """Drafts with a finding of a rule they do not expect."""
        return sum(bool(r.error or r.found_rules - r.expected) for r in results)

    def by_class(self) -> dict[str, tuple[int, int]]:
        """Per class: (drafts, drafts right), in the order of ``CLASSES``."""
        out: dict[str, tuple[int, int]] = {}
        for name in CLASSES:
            results = self.of(name)
            if results:
                out[name] = (len(results), sum(r.correct for r in results))
        return out

    def unmet(self) -> list[str]:
        """The targets this corpus misses, each with its figure; empty when all are met."""
        out: list[str] = []
        micro = self.micro()
        if micro.tp + micro.fn and micro.f1 < MICRO_F1:
            out.append(f"micro-F1 on ordinary drafts {micro.f1:.3f} < {MICRO_F1}")
        disguised = self.of(*DISGUISES)
        if disguised and self.caught(disguised) / len(disguised) < DISGUISED_CAUGHT:
            out.append(f"disguised caught {self.caught(disguised)}/{len(disguised)} "
                       f"< {DISGUISED_CAUGHT:.0%}")
        hard = self.of("hard-negative")
        if hard and self.alarms(hard) / len(hard) > HARD_NEGATIVE_ALARMS:
            out.append(f"false alarms on hard negatives {self.alarms(hard)}/{len(hard)} "
                       "> 1 per 25")
        plain = self.of("plain")
        if self.alarms(plain) > PLAIN_ALARMS:
            out.append(f"false alarms on plain posts {self.alarms(plain)}/{len(plain)} > 0")
        return out

    def report(self, verbose: bool = False) -> list[str]:
        """The score as text lines: tables per rule, language and class, targets."""
        lines = [f"{len(self.results)} drafts"]
        for title, table in (("rule", self.by_rule()), ("language", self.by_lang())):
            lines.append(f"  {title:<16}{'prec':>7}{'recall':>8}{'F1':>7}{'tp':>6}{'fp':>5}"
                         f"{'fn':>5}")
            for key, c in table.items():
                lines.append(f"  {key:<16}{c.precision:7.3f}{c.recall:8.3f}{c.f1:7.3f}"
                             f"{c.tp:6}{c.fp:5}{c.fn:5}")
        lines.append("  class           drafts  right")
        for name, (n, right) in self.by_class().items():
            lines.append(f"  {name:<16}{n:6}{right:7}")
        micro = self.micro()
        disguised, hard, plain = self.of(*DISGUISES), self.of("hard-negative"), self.of("plain")
        lines.append(f"micro-F1 on ordinary drafts: {micro.f1:.3f} "
                     f"(precision {micro.precision:.3f}, recall {micro.recall:.3f})")
        if disguised:
            caught = self.caught(disguised)
            lines.append(f"disguised caught: {caught}/{len(disguised)} "
                         f"({caught / len(disguised):.0%})")
        lines.append(f"false alarms: {self.alarms(hard)}/{len(hard)} hard negatives, "
                     f"{self.alarms(plain)}/{len(plain)} plain posts")
        severities = sum(bool(r.wrong_severities()) for r in self.results)
        if severities:
            lines.append(f"found with another severity than expected: {severities} drafts")
        unmet = self.unmet()
        lines += [f"target missed: {u}" for u in unmet] or ["all targets met"]
        if verbose:
            for r in self.results:
                if not r.correct:
                    where = f"{r.file.name}:{r.case.line}" if r.case.line else r.file.name
                    lines.append(f"  WRONG [{r.case.draft_class}, {r.lang}] {r.case.name} "
                                 f"({where})")
                    lines += [f"    {line}" for line in r.explain()]
        return lines


def score(engine: Engine, version: str, files: Iterable[tuple[Path, ExampleFile]]) -> Score:
    """Run every draft of the given corpus files and collect the results."""
    out = Score()
    for path, spec in files:
        for case in spec.tests:
            try:
                found = tuple(check(engine, version, case, spec.defaults))
            except ValueError as exc:
                out.results.append(Result(path, case, (), str(exc)))
                continue
            out.results.append(Result(path, case, found))
    return out

"""Policy tests: example drafts with the findings they must produce (like ``opa test``).

A policy directory's ``tests/*.yaml`` files hold::

    defaults: {at: "2026-11-22T12:00:00+02:00", account: personal}   # optional
    tests:
      - name: an insult in Latvian, typed without diacritics
        text: Tu esi mulkis
        lang: lv                       # optional, like every CheckRequest field
        expect:
          - {rule: offensive, severity: warn, match: mulkis}
      - name: hard negative
        text: the staff Christmas party
        expect: []

Every expected finding must be there (``severity`` and ``match`` — the substring found —
are optional) and no other finding may be: ``expect: []`` means a clean draft. The tests
of the directories a policy extends run too, against the effective policy; for those an
expected severity is a minimum (an institution may raise severities).

A file with ``score: true`` at the top is a detection *corpus*: its drafts also carry a
``lang`` and a ``class`` (``ordinary``, a disguise such as ``invisible``,
``hard-negative``, ``plain``; see ``CLASSES``) and are scored (precision, recall, F1;
``proxy.compliance.policyscore``) instead of passing or failing one by one.

A file that cannot be read or does not fit this format is reported with its path, line
and field, as policy errors are (``tests.3.expect.0.rule``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from proxy.compliance.config import RuleId, Severity
from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest, Finding

DISGUISES = (
    "invisible",  # ZWSP, ZWJ, ZWNJ, word joiner, soft hyphen inside words or numbers
    "look-alike",  # Cyrillic/Greek letters or mathematical alphanumerics in Latin words
    "spaced",  # letters separated by spaces or dots
    "substituted",  # digits and symbols for letters
    "separators",  # identifiers with other separators ("[at]", dashes, slashes, dots)
    "script-digits",  # digits of another script (fullwidth)
    "inflected",  # inflected forms that do not start with the listed stem
    "multi-word",  # terms with a word between, joined or hyphenated
)
ORDINARY = ("ordinary", "coverage")
NEGATIVE = ("hard-negative", "plain")
CLASSES = (*ORDINARY, *DISGUISES, *NEGATIVE)
DraftClass = Literal[
    "ordinary", "coverage", "invisible", "look-alike", "spaced", "substituted",
    "separators", "script-digits", "inflected", "multi-word", "hard-negative", "plain",
]


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: RuleId
    severity: Severity | None = None
    match: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"rule": value} if isinstance(value, str) else value


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    text: str = ""
    account: str | None = None
    platform: str | None = None
    attachments: list[str] = Field(default_factory=list)
    at: str | None = None
    lang: str | None = None
    official_allowed: bool | None = None
    draft_class: DraftClass | None = Field(default=None, alias="class")
    expect: list[Expected]
    _line: int = PrivateAttr(default=0)

    @property
    def line(self) -> int:
        """Line of the example in its file (set by ``read_file``; 0 when built in code)."""
        return self._line

    @model_validator(mode="after")
    def _negatives_expect_nothing(self) -> Case:
        if self.draft_class in NEGATIVE and self.expect:
            raise ValueError(f"a {self.draft_class} draft expects no finding")
        if self.draft_class is not None and self.draft_class not in NEGATIVE and not self.expect:
            raise ValueError(f"a {self.draft_class} draft expects at least one finding")
        return self


class ExampleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    score: bool = False
    defaults: dict[str, Any] = Field(default_factory=dict)
    tests: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _corpus_drafts_have_a_class(self) -> ExampleFile:
        if self.score:
            for case in self.tests:
                if case.draft_class is None or case.lang is None:
                    raise ValueError(f"{case.name!r}: a scored file's drafts need a 'class' "
                                     "and a 'lang'")
        return self


class TestFileError(Exception):
    """A test file that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Outcome:
    file: Path
    name: str
    passed: bool
    problems: tuple[str, ...]
    line: int = 0


def utf16_slice(text: str, start: int, end: int) -> str:
    """The part of ``text`` between two UTF-16 offsets (as findings count them)."""
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le", "replace")


def describe(finding: Finding, text: str) -> str:
    """``rule (severity) at start-end 'text'``: what a finding covers, for people."""
    where = utf16_slice(text, finding.start, finding.end)
    return f"{finding.rule} ({finding.severity.value}) at {finding.start}-{finding.end}" + (
        f" {where!r}" if where else ""
    )


def check(engine: Engine, version: str, case: Case, defaults: dict[str, Any]) -> list[Finding]:
    """The findings of one example; ``ValueError`` names the field when it is invalid."""
    fields: dict[str, Any] = {**defaults}
    for key in ("account", "platform", "at", "lang", "official_allowed"):
        value = getattr(case, key)
        if value is not None:
            fields[key] = value
    if case.attachments:
        fields["attachments"] = [{"kind": kind} for kind in case.attachments]
    try:
        request = CheckRequest(text=case.text, **fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "input"
        raise ValueError(f"invalid example: {field}: {error['msg']}") from None
    return list(engine.check(request, version).findings)


def run_case(
    engine: Engine, version: str, case: Case, defaults: dict[str, Any], inherited: bool
) -> list[str]:
    """Problems with one example; empty when it passes."""
    try:
        findings = check(engine, version, case, defaults)
    except ValueError as exc:
        return [str(exc)]
    everything = list(findings)
    problems: list[str] = []
    for expected in case.expect:
        found = None
        for finding in findings:
            if finding.rule != expected.rule:
                continue
            if expected.match is not None and (
                utf16_slice(case.text, finding.start, finding.end) != expected.match
            ):
                continue
            found = finding
            break
        if found is None:
            what = expected.rule + (f" {expected.match!r}" if expected.match else "")
            same = [describe(f, case.text) for f in everything if f.rule == expected.rule]
            problems.append(f"missing {what}; found " + ("; ".join(same) or "no such finding"))
            continue
        findings.remove(found)
        if expected.severity is not None:
            ok = (
                found.severity.rank >= expected.severity.rank
                if inherited
                else found.severity == expected.severity
            )
            if not ok:
                problems.append(
                    f"{expected.rule}: severity {found.severity.value}, "
                    f"expected {expected.severity.value}" + (" or higher" if inherited else "")
                )
    problems += [f"unexpected {describe(f, case.text)}" for f in findings]
    return problems


def example_files(directories: tuple[Path, ...]) -> Iterator[tuple[Path, bool]]:
    """Test files of a policy (its own first, then its bases'), with 'inherited'."""
    for i, directory in enumerate(directories):
        for path in sorted((directory / "tests").glob("*.yaml")):
            yield path, i > 0


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _lines(node: yaml.Node, loc: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]
           ) -> None:
    """Line (1-based) of every key and item under ``node``, by its path of keys."""
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                out[(*loc, key.value)] = key.start_mark.line + 1
                _lines(value, (*loc, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*loc, i), out)


def read_file(path: Path) -> ExampleFile:
    """One test file, validated; ``TestFileError`` says file:line: field: problem."""
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TestFileError(f"{name}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        raise TestFileError(f"{where}: not valid YAML: {exc.problem}") from None
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    try:
        spec = ExampleFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            known = next((loc[:n] for n in range(len(loc), -1, -1) if loc[:n] in lines), ())
            line = lines.get(known)
            field = ".".join(str(p) for p in loc)
            where = f"{name}:{line}" if line else name
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {field}: {message}" if field else f"{where}: {message}")
        raise TestFileError("\n".join(dict.fromkeys(problems))) from None
    for i, case in enumerate(spec.tests):
        case._line = lines.get(("tests", i), 0)
    return spec


def run(engine: Engine, version: str, directories: tuple[Path, ...]) -> list[Outcome]:
    """Pass/fail of every example in the policy's test files (scored files left out)."""
    outcomes: list[Outcome] = []
    for path, inherited in example_files(directories):
        try:
            spec = read_file(path)
        except TestFileError as exc:
            outcomes.append(Outcome(path, "(file)", False, tuple(str(exc).splitlines())))
            continue
        if spec.score:
            continue
        for case in spec.tests:
            problems = run_case(engine, version, case, spec.defaults, inherited)
            outcomes.append(Outcome(path, case.name, not problems, tuple(problems), case.line))
    return outcomes

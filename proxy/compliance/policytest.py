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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from proxy.compliance.config import RuleId, Severity
from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest, Finding


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
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    text: str = ""
    account: str | None = None
    platform: str | None = None
    attachments: list[str] = Field(default_factory=list)
    at: str | None = None
    lang: str | None = None
    official_allowed: bool | None = None
    expect: list[Expected]


class ExampleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Any] = Field(default_factory=dict)
    tests: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class Outcome:
    file: Path
    name: str
    passed: bool
    problems: tuple[str, ...]


def _utf16_slice(text: str, start: int, end: int) -> str:
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le", "replace")


def _describe(finding: Finding, text: str) -> str:
    where = _utf16_slice(text, finding.start, finding.end)
    return f"{finding.rule} ({finding.severity.value})" + (f" {where!r}" if where else "")


def run_case(
    engine: Engine, version: str, case: Case, defaults: dict[str, Any], inherited: bool
) -> list[str]:
    """Problems with one example; empty when it passes."""
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
        return [f"invalid example: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"]
    findings = list(engine.check(request, version).findings)
    problems: list[str] = []
    for expected in case.expect:
        found = None
        for finding in findings:
            if finding.rule != expected.rule:
                continue
            if expected.match is not None and (
                _utf16_slice(case.text, finding.start, finding.end) != expected.match
            ):
                continue
            found = finding
            break
        if found is None:
            what = expected.rule + (f" {expected.match!r}" if expected.match else "")
            problems.append(f"missing {what}")
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
    problems += [f"unexpected {_describe(f, case.text)}" for f in findings]
    return problems


def example_files(directories: tuple[Path, ...]) -> Iterator[tuple[Path, bool]]:
    """Test files of a policy (its own first, then its bases'), with 'inherited'."""
    for i, directory in enumerate(directories):
        for path in sorted((directory / "tests").glob("*.yaml")):
            yield path, i > 0


def run(engine: Engine, version: str, directories: tuple[Path, ...]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for path, inherited in example_files(directories):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            spec = ExampleFile.model_validate(data)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            outcomes.append(Outcome(path, "(file)", False, (f"cannot read tests: {exc}",)))
            continue
        for case in spec.tests:
            problems = run_case(engine, version, case, spec.defaults, inherited)
            outcomes.append(Outcome(path, case.name, not problems, tuple(problems)))
    return outcomes

"""Drafts built to make the engine slow: the work done stays bounded (counted, not
timed: ``./scripts/bench compliance`` times them), and what cannot be read is reported,
never passed."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import phonenumbers
import pytest
from stdnum import luhn
from stdnum.se import personnummer

from proxy.compliance import identifiers
from proxy.compliance.engine import MAX_PER_RULE, Engine
from proxy.compliance.model import MAX_TEXT, CheckRequest
from proxy.policy.loader import load
from proxy.settings import ROOT

EXAMPLE = ROOT / "policies" / "institutions" / "example"
SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> tuple[Engine, str]:
    loaded = load(EXAMPLE)
    return Engine.from_policy(loaded.policy), loaded.version


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a library validated a candidate (phone region, checksum)."""
    count = [0]

    def counted(function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            count[0] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(phonenumbers, "parse", counted(phonenumbers.parse))
    monkeypatch.setattr(personnummer, "is_valid", counted(personnummer.is_valid))
    monkeypatch.setattr(luhn, "is_valid", counted(luhn.is_valid))
    rows = tuple(
        s if s.name != "card" else identifiers.Scheme(s.name, s.kind, s.shape, luhn.is_valid)
        for s in identifiers.NUMBER_SCHEMES
    )
    monkeypatch.setattr(identifiers, "NUMBER_SCHEMES", rows)
    return count


def _random_digits(length: int) -> str:
    rng = random.Random(length)
    return "".join(rng.choice("0123456789 ") for _ in range(length))


@pytest.mark.parametrize("shape", ["2 ", "29123456\n", "+1 ", "1-", "random"])
def test_validations_per_draft_are_bounded(
    engine: tuple[Engine, str], validations: list[int], shape: str
) -> None:
    counts = []
    for length in (5_000, MAX_TEXT):
        text = _random_digits(length) if shape == "random" else (shape * length)[:length]
        validations[0] = 0
        result = engine[0].check(CheckRequest(text=text, at=SUNDAY), engine[1])
        counts.append(validations[0])
        assert len(result.findings) <= MAX_PER_RULE + 1
    assert counts[1] <= identifiers.BUDGET + 8  # ten times the draft, not ten times the work


def test_what_is_not_read_is_reported(engine: tuple[Engine, str]) -> None:
    """A draft of more distinct numbers than the reader validates fails closed."""
    text = _random_digits(MAX_TEXT)
    result = engine[0].check(CheckRequest(text=text, at=SUNDAY), engine[1])
    assert result.verdict == "block"
    last = result.findings[-1]
    assert last.rule == "personal-data"
    assert "could not read all the numbers" in last.message
    assert last.end > MAX_TEXT * 0.9


def test_many_findings_are_joined_after_the_first_hundred(engine: tuple[Engine, str]) -> None:
    text = "zvani 29123456, " * 300
    findings = engine[0].check(CheckRequest(text=text, at=SUNDAY), engine[1]).findings
    assert len(findings) == MAX_PER_RULE + 1
    assert findings[-1].end >= len(text) - 10

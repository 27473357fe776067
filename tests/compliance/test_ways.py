"""Ways forward and simulation, as the policy sets them (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest, CheckResult
from proxy.policy.loader import PolicyError, load
from tests.compliance.test_engine import SUNDAY, _overlay

TEXT = "Zvani 29123456, muļķi"  # a phone number (block) and an insult (warn)


def _check(inst: Path, text: str = TEXT, platform: str | None = None) -> CheckResult:
    loaded = load(inst)
    engine = Engine.from_policy(loaded.policy)
    return engine.check(CheckRequest(text=text, at=SUNDAY, platform=platform), loaded.version)


def _ways(result: CheckResult) -> dict[str, list[str]]:
    return {f.rule: list(f.ways) for f in result.findings}


def test_rule_then_policy_then_defaults(tmp_path: Path) -> None:
    result = _check(_overlay(tmp_path, "compliance: {}\n"))
    assert result.verdict == "block"
    assert _ways(result) == {"personal-data": ["justify", "report", "review"],
                             "offensive": ["acknowledge", "report", "review"]}
    assert not any(f.simulated for f in result.findings)


def test_institution_takes_ways_away(tmp_path: Path) -> None:
    # lists in an overlay extend the base's: !replace takes ways away
    inst = _overlay(tmp_path, "compliance:\n  ways: {warn: !replace [report]}\n  rules:\n"
                    "    personal-data:\n      ways: {block: !replace []}\n")
    assert _ways(_check(inst)) == {"personal-data": [], "offensive": ["report"]}


def test_institution_cannot_add_ways(tmp_path: Path) -> None:
    inst = _overlay(tmp_path, "compliance:\n  rules:\n    classified:\n"
                    "      ways: {block: [acknowledge, report]}\n")
    with pytest.raises(PolicyError) as caught:
        load(inst)
    text = str(caught.value)
    assert "compliance.yaml:4" in text
    assert "compliance.rules.classified.ways.block" in text
    assert "adds acknowledge" in text


def test_unknown_way_names_the_field(tmp_path: Path) -> None:
    inst = _overlay(tmp_path, "compliance:\n  ways: {block: [ignore]}\n")
    with pytest.raises(PolicyError) as caught:
        load(inst)
    assert "compliance.ways.block" in str(caught.value)


def test_simulated_rule_is_shown_but_not_in_the_verdict(tmp_path: Path) -> None:
    inst = _overlay(tmp_path, "compliance:\n  rules:\n    personal-data:\n"
                    "      mode: simulate\n")
    result = _check(inst)
    assert result.verdict == "warn"  # the insult still counts; the number is information
    simulated = {f.rule: f.simulated for f in result.findings}
    assert simulated == {"personal-data": True, "offensive": False}
    assert [f.severity for f in result.findings if f.rule == "personal-data"] == ["block"]


def test_whole_policy_or_one_platform_in_simulation(tmp_path: Path) -> None:
    inst = _overlay(tmp_path, "compliance:\n  simulate: {platforms: [x]}\n")
    on_x = _check(inst, platform="x")
    assert on_x.verdict == "ok"
    assert len(on_x.findings) == 2
    assert all(f.simulated for f in on_x.findings)
    assert _check(inst, platform="facebook").verdict == "block"
    everything = _check(_overlay(tmp_path / "all", "compliance: {mode: simulate}\n"))
    assert everything.verdict == "ok"
    assert all(f.simulated for f in everything.findings)


def test_simulating_an_unknown_platform_names_it(tmp_path: Path) -> None:
    inst = _overlay(tmp_path, "compliance:\n  simulate: {platforms: [myspace]}\n")
    with pytest.raises(PolicyError) as caught:
        load(inst)
    assert "myspace" in str(caught.value)
    assert "compliance.simulate.platforms" in str(caught.value)

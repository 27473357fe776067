"""The JSON Schema shipped for editors is current and accepts every shipped policy file."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from proxy.cli.policy_cmd import policy_file_schema

POLICIES = Path(__file__).parents[2] / "policies"
FILES = sorted(p for p in POLICIES.rglob("*.yaml") if "tests" not in p.parts)


def test_shipped_schema_is_current() -> None:
    shipped = json.loads((POLICIES / "policy.schema.json").read_text(encoding="utf-8"))
    assert shipped == policy_file_schema(), "run: sargs policy schema > policies/policy.schema.json"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_every_policy_file_validates(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data = json.loads(json.dumps(data, default=str))  # YAML timestamps as editors see them
    jsonschema_rs.validate(policy_file_schema(), data)


def test_a_misspelt_action_is_refused_by_the_schema() -> None:
    bad = {"roles": {"staff": {"name": "Staff", "platforms": {"tiktok": "alow"}}}}
    assert not jsonschema_rs.is_valid(policy_file_schema(), bad)

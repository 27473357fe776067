"""Compliance rule configuration, as it sits in a policy's ``compliance:`` section.

Placeholder: the rules engine issue fills this in.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ComplianceConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


def tightening_errors(
    base: ComplianceConfig, merged: ComplianceConfig
) -> list[tuple[tuple[str | int, ...], str]]:
    """Places where an overlay lowered a severity set by the policy it extends."""
    del base, merged
    return []


def _unused(_: Any) -> None:  # pragma: no cover
    return None

"""What a check takes and gives: ``CheckRequest`` in, ``CheckResult`` with ``Finding``s out.

The shapes are the contract of ``sargs check`` and ``POST /api/v1/check`` (DESIGN.md):
``start``/``end`` count UTF-16 code units, end exclusive; ``verdict`` is the highest
severity found, or ``ok`` (a ``simulated`` finding does not count: it is information).
A finding about the draft as a whole (an attachment, the
time of day, the account) has ``start == end == 0``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from proxy.compliance.config import RuleId, Severity, Way

Lang = Literal["en", "lv", "sv", "sq"]
Account = Literal["official", "personal"]

MAX_TEXT = 50_000
"""Longest draft checked, in characters (longer than any platform accepts)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["image", "video", "file"]


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(max_length=MAX_TEXT, description="The draft. Never stored or logged.")
    account: Account = "personal"
    platform: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="Platform id."
    )
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    at: AwareDatetime = Field(
        default_factory=_now, description="Evaluate as of this time (embargoes, hours)."
    )
    lang: Lang | None = Field(default=None, description="Messages' language; default en.")
    official_allowed: bool | None = Field(
        default=None,
        description="Whether the author may post as the official account; None: unknown "
        "(no 'official-account' finding). The gateway knows the user's roles and sets it.",
    )


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: RuleId
    severity: Severity
    start: int = Field(ge=0, description="UTF-16 code units, like a JavaScript string index.")
    end: int = Field(ge=0, description="Exclusive.")
    message: str
    guideline: str
    ways: list[Way] = Field(
        default_factory=list,
        description="The ways forward the policy allows past this finding (acknowledge, "
        "justify, report, review); empty: the text must be edited.",
    )
    simulated: bool = Field(
        default=False,
        description="The rule runs in simulation here: shown and recorded, never refused, "
        "and not counted in the verdict.",
    )


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Literal["ok", "info", "warn", "block"]
    policy: str
    findings: list[Finding]

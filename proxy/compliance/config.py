"""The schema of a policy's ``compliance:`` section: rules, lexicons, severities, messages.

Rule content lives in the policy, not in code. The base code of conduct sets every rule;
an institution's overlay adds terms, embargoes and code names and may raise severities,
never lower them (``tightening_errors``; the loader reports them with file and line).
The format is documented in docs/rules.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

RuleId = Literal[
    "classified",
    "personal-data",
    "offensive",
    "partisan",
    "commercial",
    "embargo",
    "speculation",
    "minors-consent",
    "copyright",
    "working-hours",
    "unsafe-link",
    "official-account",
]
"""The stable rule ids of the contract (DESIGN.md)."""

RULE_IDS: tuple[str, ...] = get_args(RuleId)

Way = Literal["acknowledge", "justify", "report", "review"]
"""A way forward past a finding (issue 16): ``acknowledge`` (post anyway, recorded),
``justify`` (post with a reason), ``report`` (the finding is wrong: a false positive),
``review`` (ask a superior). No way at all means: edit the text."""

WAYS: tuple[str, ...] = get_args(Way)

Mode = Literal["enforce", "simulate"]
"""``simulate``: findings are shown and recorded with what would have happened; nothing
is refused."""

TermLang = Literal["any", "en", "lv", "sv", "sq"]
"""Lexicons are keyed by language for the authors' sake; a draft is matched against all."""


class Severity(StrEnum):
    """Ordered: ``info`` < ``warn`` < ``block``."""

    info = "info"
    warn = "warn"
    block = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.info: 0, Severity.warn: 1, Severity.block: 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A message users see: every language is required."""

    en: str = Field(min_length=1)
    lv: str = Field(min_length=1)
    sv: str = Field(min_length=1)
    sq: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        value = getattr(self, lang, None) if lang in ("en", "lv", "sv", "sq") else None
        return value if isinstance(value, str) else self.en


def _both(value: Any) -> Any:
    return {"official": value, "personal": value} if isinstance(value, str) else value


class Severities(_Strict):
    """Severity per account kind; a single value applies to both."""

    official: Severity
    personal: Severity

    def of(self, account: str) -> Severity:
        return self.official if account == "official" else self.personal


SeverityField = Annotated[Severities, BeforeValidator(_both)]


def _check_term(value: str) -> str:
    term = " ".join(value.split())
    if not term or term == "*":
        raise ValueError("a term must not be empty")
    words = term.split(" ")
    for i, word in enumerate(words):
        if "*" in word[:-1]:
            raise ValueError(f"{value!r}: '*' is allowed only at the end of a word (a stem)")
        letters = word if i < len(words) - 1 else term  # "classified ad*" is a stem
        if word.endswith("*") and len(letters.rstrip("*")) < 3:
            raise ValueError(f"{value!r}: a stem needs at least 3 letters before '*'")
    return term


Term = Annotated[str, BeforeValidator(_check_term)]
Terms = dict[TermLang, list[Term]]


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_compiles)]
"""A regular expression that compiles (a pattern's, or its 'near' one)."""


class Near(_Strict):
    """A second expression that must match close to the first one (in the same view of
    the draft): "a recommendation near the name of a café"."""

    regex: Regex
    within: int = Field(
        default=100,
        ge=1,
        le=300,
        description="Characters before the match's start or after its end in which 'regex' "
        "must match.",
    )
    same_sentence: bool = Field(
        default=False,
        description="'regex' must also match in the match's own sentence (sentences end at "
        ". ! ? or a line break before white space).",
    )


class Pattern(_Strict):
    """A regular expression run on the draft as typed (case-sensitive unless told), or on
    the folded draft (``fold: true``).

    When the expression has a group, the finding covers group 1 only (the context
    around it, such as "personal number:", is not underlined).
    """

    regex: Regex
    ignore_case: bool = False
    fold: bool = Field(
        default=False,
        description="Match the folded draft (case and diacritics ignored, white space "
        "collapsed); letters with diacritics in the expression are folded too.",
    )
    kind: str | None = Field(default=None, description="Selects a message from 'messages'.")
    requires: list[str] = Field(
        default_factory=list,
        description="Words (folded: case and diacritics ignored) one of which every match "
        "contains: the expression runs only on drafts that hold one. A long expression "
        "then costs nothing on most drafts.",
    )
    near: Near | None = Field(
        default=None,
        description="A match counts only when this expression matches within 'within' "
        "characters of it (each expression is run once over the draft).",
    )

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"regex": value} if isinstance(value, str) else value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


WayList = Annotated[list[Way], AfterValidator(_unique)]


class Ways(_Strict):
    """The ways forward per severity; a severity left out takes the next level's
    (rule → ``compliance.ways`` → the defaults ``DEFAULT_WAYS``). An empty list: none,
    the text must be edited. ``info`` findings never have ways (information only)."""

    warn: WayList | None = None
    block: WayList | None = None

    def of(self, severity: Severity) -> Sequence[str] | None:
        if severity is Severity.warn:
            return self.warn
        if severity is Severity.block:
            return self.block
        return []


DEFAULT_WAYS: dict[Severity, tuple[str, ...]] = {
    Severity.warn: ("acknowledge", "report", "review"),
    Severity.block: ("report", "review"),
    Severity.info: (),
}


class Rule(_Strict):
    severity: SeverityField
    ways: Ways | None = Field(
        default=None, description="Ways forward past this rule's findings, per severity."
    )
    mode: Mode | None = Field(
        default=None,
        description="'simulate' shows and records this rule's findings but refuses nothing; "
        "default: the policy's 'compliance.mode'.",
    )
    message: Text
    messages: dict[str, Text] = Field(
        default_factory=dict, description="Messages for a detector's kinds (phone, iban, …)."
    )
    guideline: str | None = Field(
        default=None, description="Key of the guideline clause in the policy's 'guidelines'."
    )
    terms: Terms = Field(default_factory=dict)
    exceptions: Terms = Field(
        default_factory=dict,
        description="Phrases in which a term is not a violation ('classified ads').",
    )
    patterns: list[Pattern] = Field(default_factory=list)
    gap: int = Field(
        default=0,
        ge=0,
        le=5,
        description="Words allowed between the words of a multi-word term ('top very "
        "secret' for 'top secret' with gap 1); also for the rule's code names.",
    )
    unless: list[str] = Field(
        default_factory=list,
        description="Regular expressions on the folded sentence: a finding of this rule "
        "in a sentence one of them matches is dropped (a denial of a rumour, a reported "
        "poll figure).",
    )
    unless_reach: Literal["sentence", "next-sentence"] = Field(
        default="sentence",
        description="What 'unless' reads: the finding's sentence, or that sentence and "
        "the next (a denial often follows the rumour it denies: 'A rumour says the pool "
        "closes. That is not true.').",
    )
    quoted: Severity | None = Field(
        default=None,
        description="Severity of a finding inside quotation marks (a title of a work); "
        "never higher than the rule's own.",
    )

    @field_validator("unless")
    @classmethod
    def _unless_compiles(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
        return values


class Embargo(_Strict):
    """Terms that must not be published before ``until`` (news first on official channels)."""

    terms: list[Term] = Field(min_length=1)
    until: AwareDatetime
    note: str | None = Field(default=None, description="For authors; never shown to staff.")
    gap: int = Field(
        default=0, ge=0, le=5, description="Words allowed between the words of a term."
    )

    @field_validator("until", mode="before")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("give the release time with its UTC offset (…T10:00:00+02:00)")
        return value


class PersonalData(_Strict):
    phone_regions: list[str] = Field(
        default_factory=lambda: ["LV", "SE", "XK", "AL"],
        description="Regions whose national phone formats are recognized ('+…' always is).",
    )
    role_mailboxes: list[str] = Field(
        default_factory=list,
        description="Local parts of role addresses (info@, press@): not personal data.",
    )
    reference_markers: list[str] = Field(
        default_factory=list,
        description="Words before decision and reference numbers ('Nr.', 'Dnr'): not phones.",
    )
    public: list[str] = Field(
        default_factory=list,
        description="Published numbers (the institution's IBAN, switchboard): not flagged.",
    )

    @field_validator("phone_regions")
    @classmethod
    def _regions(cls, values: list[str]) -> list[str]:
        import phonenumbers

        for value in values:
            if value not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"{value!r} is not a phone region (like LV, SE, XK, AL)")
        return values


class Links(_Strict):
    shorteners: list[str] = Field(default_factory=list, description="Link shortener domains.")
    http_allowed: list[str] = Field(
        default_factory=list, description="Hosts whose plain http links are not flagged."
    )


class Simulate(_Strict):
    platforms: list[str] = Field(
        default_factory=list,
        description="Platform ids whose posts are checked in simulation (nothing refused).",
    )


class ComplianceConfig(_Strict):
    rules: dict[RuleId, Rule] = Field(default_factory=dict)
    mode: Mode = Field(
        default="enforce",
        description="'simulate': every finding is shown and recorded, nothing refused.",
    )
    simulate: Simulate = Field(default_factory=Simulate)
    ways: Ways = Field(
        default_factory=Ways, description="Policy-wide ways forward per severity."
    )
    reasons: dict[str, Text] = Field(
        default_factory=dict,
        description="Reasons a user may pick when proceeding with a justification (id → "
        "label); free text is always possible too.",
    )
    proceed_minutes: int = Field(
        default=10,
        ge=1,
        le=240,
        description="How long a permission to post one text (after proceeding) lasts.",
    )
    code_names: list[Term] = Field(
        default_factory=list, description="Institution code names (rule 'classified')."
    )
    embargoes: list[Embargo] = Field(default_factory=list)
    personal_data: PersonalData = Field(default_factory=PersonalData)
    links: Links = Field(default_factory=Links)


def tightening_errors(
    base: ComplianceConfig, merged: ComplianceConfig
) -> list[tuple[tuple[str | int, ...], str]]:
    """Places where an overlay lowered a severity set by the policy it extends, or added
    a way forward past a rule's findings that the base did not offer."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    for rule_id, rule in base.rules.items():
        now = merged.rules.get(rule_id)
        if now is None:
            continue
        for severity in (Severity.warn, Severity.block):
            was_ways = set(ways_of(base, rule_id, severity))
            got_ways = ways_of(merged, rule_id, severity)
            added = [w for w in got_ways if w not in was_ways]
            if added:
                errors.append((
                    ("rules", rule_id, "ways", severity.value),
                    f"adds {', '.join(added)}: an institution may take ways forward away, "
                    "never add them",
                ))
        for account in ("official", "personal"):
            was, got = rule.severity.of(account), now.severity.of(account)
            if got.rank < was.rank:
                errors.append((
                    ("rules", rule_id, "severity", account),
                    f"lowers {was.value!r} to {got.value!r}: an institution may raise a "
                    "rule's severity, never lower it",
                ))
    return errors


def ways_of(config: ComplianceConfig, rule_id: str, severity: Severity) -> tuple[str, ...]:
    """The ways forward past a finding of ``rule_id`` at ``severity``: the rule's, else
    the policy's ``compliance.ways``, else ``DEFAULT_WAYS``."""
    if severity is Severity.info:
        return ()
    rule = config.rules.get(rule_id)  # type: ignore[call-overload]
    for ways in (rule.ways if rule else None, config.ways):
        chosen = ways.of(severity) if ways is not None else None
        if chosen is not None:
            return tuple(chosen)
    return DEFAULT_WAYS[severity]


def simulated(config: ComplianceConfig, rule_id: str, platform: str | None) -> bool:
    """Whether findings of ``rule_id`` on ``platform`` are simulated (shown, recorded,
    never refused): the rule's ``mode``, else ``compliance.mode``; or the platform is in
    ``compliance.simulate.platforms``."""
    rule = config.rules.get(rule_id)  # type: ignore[call-overload]
    mode = (rule.mode if rule is not None else None) or config.mode
    return mode == "simulate" or (platform is not None and platform in config.simulate.platforms)

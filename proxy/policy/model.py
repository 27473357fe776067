"""The policy bundle as pydantic models.

A policy is a tree of YAML files (see ``loader``); these models are its schema. They are
strict (``extra="forbid"``) so that a typo in a policy file is an error that names the
file, the line and the field, never a silently ignored key.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from proxy.compliance.config import ComplianceConfig

LANGUAGES = ("en", "lv", "sv", "sq")
"""Languages every message a user sees must exist in; English is the fallback."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(StrEnum):
    """Access to a platform. Ordered: ``block`` < ``read`` < ``allow``."""

    allow = "allow"
    read = "read"
    block = "block"

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]


_ACTION_RANK = {Action.block: 0, Action.read: 1, Action.allow: 2}


def _localized(value: Any) -> Any:
    if isinstance(value, str):
        return {"en": value}
    return value


class Localized(BaseModel):
    """A text in several languages; English is required and is the fallback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    en: str
    lv: str | None = None
    sv: str | None = None
    sq: str | None = None

    def get(self, lang: str) -> str:
        text = getattr(self, lang, None) if lang in LANGUAGES else None
        return text or self.en


LocalizedText = Annotated[Localized, BeforeValidator(_localized)]

# --- platform catalog -------------------------------------------------------------------

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_TEXT_STEP = r"(json|form|multipart|query):[A-Za-z0-9_.\[\]*-]+"
_TEXT_AT = re.compile(rf"^{_TEXT_STEP}(\|{_TEXT_STEP})*$")


def _check_domain(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain name (like example.com)")
    return value


Domain = Annotated[str, BeforeValidator(_check_domain)]


class PostingEndpoint(Strict):
    """Where a platform receives new posts, and where the post's text sits in the body.

    Every unsafe method (anything but GET, HEAD, OPTIONS) to the path is checked, and the
    path is compared in its canonical form (``proxy.policy.canonical``)."""

    method: Literal["POST", "PUT", "PATCH"] = Field(
        default="POST",
        description="The method the platform uses (for readers): every unsafe method to "
        "the path is treated as a post.",
    )
    path: str = Field(description="Path pattern; '*' matches one path segment, '**' any rest.")
    text: list[str] = Field(
        description="Where the text sits: 'json:dotted.path', 'form:field', "
        "'multipart:field' or 'query:name'; steps chain with '|' when a field holds JSON "
        "('form:variables|json:input.message.text'). Every location present is checked.",
        min_length=1,
    )
    hosts: list[Domain] = Field(
        default_factory=list,
        description="Limit to these hosts (default: any host of the platform).",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _TEXT_AT.match(value):
                raise ValueError(
                    f"{value!r} is not a text location (json:a.b, form:f, multipart:f, query:q)"
                )
        return values


class ReadingCall(Strict):
    """A call that reads although it uses an unsafe method (a GraphQL query, a search, an
    analytics beacon): a ``read`` role may make it. Anything that carries text at one of
    the platform's posting locations is still a post."""

    path: str = Field(description="Path pattern; '*' matches one path segment, '**' any rest.")
    operations: list[str] = Field(
        default_factory=list,
        description="GraphQL operation names (JSON/query 'operationName', form "
        "'fb_api_req_friendly_name'); empty: any call to the path.",
    )
    hosts: list[Domain] = Field(
        default_factory=list,
        description="Limit to these hosts (default: any host of the platform).",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value


class Platform(Strict):
    name: str
    domains: list[Domain] = Field(min_length=1)
    media_domains: list[Domain] = Field(
        default_factory=list,
        description="Video and media CDNs; a role may block them (network load).",
    )
    posting: list[PostingEndpoint] = Field(default_factory=list)
    reading: list[ReadingCall] = Field(
        default_factory=list,
        description="Calls that read although they use POST; every other unsafe request "
        "of a read-only role is refused.",
    )
    max_post_bytes: int = Field(
        default=1_048_576, ge=1024,
        description="Largest body accepted at a posting endpoint (larger: 413).",
    )
    unreadable_posts: Literal["refuse", "pass"] = Field(
        default="refuse",
        description="A body at a posting endpoint that cannot be decoded, parsed or read "
        "at the text locations: refused (default) or passed unchecked (logged).",
    )


# --- institution, identity, roles --------------------------------------------------------

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _days(value: Any) -> Any:
    """Accept ``[mon, tue]``, ``mon-fri`` or ``[mon-fri, sun]``."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return value
    out: list[int] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a day (mon … sun)")
        first, _, last = item.strip().lower().partition("-")
        for day in (first, last or first):
            if day not in _DAYS:
                raise ValueError(f"{day!r} is not one of {', '.join(_DAYS)}")
        start, end = _DAYS.index(first), _DAYS.index(last or first)
        if end < start:
            raise ValueError(f"{item!r} runs backwards")
        out.extend(range(start, end + 1))
    return sorted(set(out))


Days = Annotated[list[int], BeforeValidator(_days)]


def _clock(value: Any) -> Any:
    if isinstance(value, int) and 0 <= value < 24 * 60:  # YAML 1.1 reads 08:30 as 510
        return time(value // 60, value % 60)
    if isinstance(value, str) and value.strip() in ("24:00", "24:00:00"):
        return time.max
    return value


Clock = Annotated[time, BeforeValidator(_clock)]


class Window(Strict):
    """Days and hours, in the institution's time zone; ``to`` is exclusive."""

    days: Days = Field(default_factory=lambda: list(range(7)))
    start: Clock = Field(alias="from", default=time(0, 0))
    end: Clock = Field(alias="to", default=time.max)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.end <= self.start:
            raise ValueError(
                f"'to' ({self.end:%H:%M}) must be after 'from' ({self.start:%H:%M}); "
                "split a window that crosses midnight in two"
            )
        return self

    def contains(self, weekday: int, clock: time) -> bool:
        return weekday in self.days and self.start <= clock < self.end


class InstitutionInfo(Strict):
    name: str
    timezone: str = "UTC"
    working_hours: list[Window] = Field(default_factory=list)
    domains: list[Domain] = Field(
        default_factory=list, description="The institution's own domains (look-alike checks)."
    )
    service_url: str = Field(
        default="http://127.0.0.1:8081",
        description="Where staff reach the Sargs service (block page links, requests).",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (like Europe/Riga)") from None
        return value


class IpRange(Strict):
    cidr: str
    roles: list[str] = Field(min_length=1)
    name: str | None = None

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an address range (like 10.1.0.0/16)") from None


IdentitySource = Literal["negotiate", "basic", "ip"]


def _basic_only() -> list[IdentitySource]:
    return ["basic"]


class Identity(Strict):
    """How the gateway learns who is browsing. Sources are tried in order."""

    sources: list[IdentitySource] = Field(default_factory=_basic_only)
    realm: str = "Sargs"
    ip_ranges: list[IpRange] = Field(default_factory=list)
    login_cache_seconds: int = Field(default=300, ge=0, le=86400)
    directory_groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Directory groups → roles (docs/identity.md): a group DN "
        "(CN=Press,OU=Groups,DC=example,DC=org) or a group name (its cn); a user in several "
        "mapped groups holds all their roles.",
    )


class AccessRule(Strict):
    """A role's access to one platform, optionally limited to time windows."""

    action: Action
    windows: list[Window] = Field(
        default_factory=list, description="When 'action' applies; empty means always."
    )
    otherwise: Action = Field(
        default=Action.block, description="Access outside the windows."
    )
    media: bool | None = Field(
        default=None,
        description="Allow the platform's media/video CDN; default: the role's block_media.",
    )

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"action": value} if isinstance(value, str) else value


class Role(Strict):
    name: LocalizedText
    description: LocalizedText | None = None
    default: Action = Field(default=Action.block, description="Access to unlisted platforms.")
    platforms: dict[str, AccessRule] = Field(default_factory=dict)
    block_media: bool = Field(
        default=False, description="Block every platform's video/media CDN for this role."
    )
    official_accounts: bool = Field(
        default=False, description="May post as the institution's official accounts."
    )
    max_grant_hours: int = Field(
        default=8, ge=1, le=24 * 90, description="Longest temporary access approvable."
    )


class Deny(Strict):
    """A platform blocked for everyone; wins over every role and every grant."""

    platform: str
    reason: LocalizedText


class ApprovalRule(Strict):
    """Who may approve which temporary-access requests (the service's approver pages).

    A rule applies to a request when the requester holds one of ``roles``, the request is
    for one of ``platforms`` and the requester is in one of ``departments`` (an empty list
    matches anything). Nobody approves their own request, whatever the rules say.
    """

    approvers: list[str] = Field(
        min_length=1,
        description="User names, or role ids prefixed 'role:' (role:approver, role:head).",
    )
    roles: list[str] = Field(default_factory=list, description="Requesters' roles; empty: any.")
    platforms: list[str] = Field(default_factory=list, description="Platforms; empty: any.")
    departments: list[str] = Field(
        default_factory=list, description="Requesters' departments; empty: any."
    )


class ReviewRule(Strict):
    """Who reviews whose drafts (review before posting). Matches like ``ApprovalRule``: the
    author holds one of ``roles``, is in one of ``departments``, posts to one of
    ``platforms`` (an empty list matches anything). Nobody reviews their own draft."""

    reviewers: list[str] = Field(
        min_length=1,
        description="User names, or role ids prefixed 'role:' (role:head, role:approver).",
    )
    roles: list[str] = Field(default_factory=list, description="Authors' roles; empty: any.")
    platforms: list[str] = Field(default_factory=list, description="Platforms; empty: any.")
    departments: list[str] = Field(
        default_factory=list, description="Authors' departments; empty: any."
    )


class Reviews(Strict):
    """Review before posting ("ask a superior"); see docs/reviews.md."""

    rules: list[ReviewRule] = Field(
        default_factory=list,
        description="Who reviews whose drafts; empty: users with the approver role.",
    )
    retention_days: int = Field(
        default=7, ge=1, le=365,
        description="An undecided draft is deleted after this many days (decided ones at "
        "once); the review's record goes then too.",
    )
    allowance_minutes: int = Field(
        default=60, ge=1, le=7 * 24 * 60,
        description="How long an approval lets the author post exactly the reviewed text "
        "(once).",
    )
    official_accounts: bool = Field(
        default=False,
        description="Posts as an official account always need a review: the check gives "
        "an 'official-account' finding (block) whose only way forward is review.",
    )


class Guideline(Strict):
    title: LocalizedText
    text: LocalizedText


class Policy(Strict):
    """The effective, merged policy an institution runs."""

    name: str
    version: str
    institution: InstitutionInfo
    identity: Identity = Field(default_factory=Identity)
    guidelines: dict[str, Guideline] = Field(default_factory=dict)
    platforms: dict[str, Platform]
    roles: dict[str, Role] = Field(default_factory=dict)
    deny: list[Deny] = Field(default_factory=list)
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)
    approvals: list[ApprovalRule] = Field(
        default_factory=list,
        description="Who approves temporary access; empty: any user with the approver role.",
    )
    reviews: Reviews = Field(default_factory=Reviews)

    @model_validator(mode="after")
    def _references(self) -> Policy:
        known = set(self.platforms)
        for role_id, role in self.roles.items():
            for platform_id in role.platforms:
                if platform_id not in known:
                    raise _RefError(
                        ("roles", role_id, "platforms", platform_id),
                        f"unknown platform {platform_id!r} (known: {', '.join(sorted(known))})",
                    )
        for i, deny in enumerate(self.deny):
            if deny.platform not in known:
                raise _RefError(("deny", i, "platform"), f"unknown platform {deny.platform!r}")
        owner: dict[str, str] = {}
        for platform_id, platform in self.platforms.items():
            kinds = (("domains", platform.domains), ("media_domains", platform.media_domains))
            for kind, domains in kinds:
                for j, domain in enumerate(domains):
                    if owner.setdefault(domain, platform_id) != platform_id:
                        raise _RefError(
                            ("platforms", platform_id, kind, j),
                            f"{domain!r} already belongs to platform {owner[domain]!r}",
                        )
        for j, platform_id in enumerate(self.compliance.simulate.platforms):
            if platform_id not in known:
                raise _RefError(("compliance", "simulate", "platforms", j),
                                f"unknown platform {platform_id!r}")
        for i, rule in enumerate(self.approvals):
            for j, platform_id in enumerate(rule.platforms):
                if platform_id not in known:
                    raise _RefError(("approvals", i, "platforms", j),
                                    f"unknown platform {platform_id!r}")
        for i, review in enumerate(self.reviews.rules):
            for j, platform_id in enumerate(review.platforms):
                if platform_id not in known:
                    raise _RefError(("reviews", "rules", i, "platforms", j),
                                    f"unknown platform {platform_id!r}")
        for i, ip_range in enumerate(self.identity.ip_ranges):
            for j, role_id in enumerate(ip_range.roles):
                if role_id not in self.roles:
                    raise _RefError(
                        ("identity", "ip_ranges", i, "roles", j), f"unknown role {role_id!r}"
                    )
        for group, roles in self.identity.directory_groups.items():
            where = ("identity", "directory_groups", group)
            if "=" in group:
                try:
                    if not parse_dn(group):
                        raise ValueError("empty")
                except (LDAPInvalidDnError, ValueError) as exc:
                    raise _RefError(where, f"{group!r} is not a DN ({exc})") from None
            for role_id in roles:
                if role_id not in self.roles and role_id not in SERVICE_ROLES:
                    raise _RefError(where, f"unknown role {role_id!r} for group {group!r}")
        return self


SERVICE_ROLES = frozenset({"approver", "admin"})
"""The service's own roles (``proxy.store.users.SERVICE_ROLES``), valid in a group mapping."""


class _RefError(ValueError):
    """A cross-reference error that knows where it points (the loader reports the line)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc

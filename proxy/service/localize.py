"""What a page shows in the reader's language and time zone: times, durations, and the
names of rules, roles and platforms instead of their ids.

Times and durations come from Babel (CLDR data for en, lv, sv and sq), not from
hand-written patterns. The time zone is the reader's own when their browser told us
(``pages.js`` sets the ``sargs_tz`` cookie from ``Intl``; an unknown zone is ignored),
else the institution's (``institution.timezone`` in the policy).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time, format_timedelta, get_datetime_format

from proxy.i18n import Translator
from proxy.policy.model import Policy

TZ_COOKIE = "sargs_tz"


def zone(cookie: str | None, fallback: str) -> ZoneInfo:
    """The reader's zone from the cookie's IANA name, else ``fallback``."""
    if cookie and len(cookie) < 64 and cookie.replace("/", "").replace("_", "").replace(
            "-", "").replace("+", "").isalnum():
        try:
            return ZoneInfo(cookie)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(fallback)


def when(value: datetime | None, lang: str, tz: ZoneInfo) -> str:
    """``3 Dec 2026, 05:47`` in the reader's language and zone ('' for None)."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    pattern = str(get_datetime_format("medium", locale=lang))
    return (pattern.replace("{1}", format_date(local, "medium", locale=lang))
            .replace("{0}", format_time(local, "short", locale=lang)).replace("'", ""))


def duration(minutes: float, lang: str) -> str:
    """``1 hour 30 minutes``, ``8 hours``, ``15 minutes`` in the reader's language."""
    total = max(0, round(minutes))
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [format_timedelta(timedelta(**{unit: n}), locale=lang,
                              format="long")
             for unit, n in (("days", days), ("hours", hours), ("minutes", mins)) if n]
    return " ".join(parts) or format_timedelta(timedelta(0), locale=lang, format="long")


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))


def browser_of(agent: str) -> str:
    """``Chrome · Linux`` from a User-Agent header, or the header cut short when neither
    is known (the sessions page shows it; the header is the browser's own claim)."""
    browser = next((name for token, name in _BROWSERS if token in agent), "")
    system = next((name for token, name in _SYSTEMS if token in agent), "")
    if "Headless" in agent and browser:
        browser += " (headless)"
    return " · ".join(p for p in (browser, system) if p) or agent[:60]


def rule_name(policy: Policy, rule: str, lang: str) -> str:
    """A check rule's or access clause's name: the title of the guideline the rule cites,
    else the service's own word for an access clause, else the id."""
    compliance = next((r for rid, r in policy.compliance.rules.items() if rid == rule), None)
    if compliance is not None and compliance.guideline:
        guideline = policy.guidelines.get(compliance.guideline)
        if guideline is not None:
            return guideline.title.get(lang)
    t = Translator("service", lang)
    key = f"rule_{rule.replace('-', '_')}"
    try:
        return t(key)
    except KeyError:
        return rule


def role_name(policy: Policy, role: str, lang: str) -> str:
    found = policy.roles.get(role)
    return found.name.get(lang) if found is not None else role


def platform_name(policy: Policy, platform: str | None) -> str:
    if not platform:
        return ""
    found = policy.platforms.get(platform)
    return found.name if found is not None else platform

"""Times, durations and names as the pages show them (proxy/service/localize.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from proxy.policy.loader import load
from proxy.service.localize import browser_of, duration, role_name, rule_name, when, zone
from proxy.settings import ROOT

AT = datetime(2026, 12, 3, 8, 5, tzinfo=UTC)


@pytest.mark.parametrize(("lang", "minutes", "said"), [
    ("en", 90, "1 hour 30 minutes"), ("lv", 90, "1 stunda 30 minūšu"),
    ("sv", 480, "8 timmar"), ("sq", 1440, "1 ditë"), ("en", 15, "15 minutes"),
])
def test_durations_in_words(lang: str, minutes: int, said: str) -> None:
    assert duration(minutes, lang) == said


@pytest.mark.parametrize(("lang", "tz", "said"), [
    ("en", "Europe/Riga", "Dec 3, 2026, 10:05\u202fAM"),
    ("sv", "America/New_York", "3 dec. 2026 03:05"),
    ("lv", "Europe/Riga", "2026. gada 3. dec. 10:05"),
])
def test_times_in_the_readers_language_and_zone(lang: str, tz: str, said: str) -> None:
    assert when(AT, lang, ZoneInfo(tz)) == said


@pytest.mark.parametrize("cookie", ["../../etc/passwd", "Europe/Nowhere", "", "x" * 200,
                                    "Europe/Riga\x00", "/etc/localtime", None])
def test_a_zone_cookie_that_is_not_a_zone_falls_back(cookie: str | None) -> None:
    assert zone(cookie, "Europe/Riga") == ZoneInfo("Europe/Riga")


def test_a_real_zone_cookie_is_used() -> None:
    assert zone("America/New_York", "Europe/Riga") == ZoneInfo("America/New_York")


def test_names_not_ids() -> None:
    policy = load(ROOT / "policies" / "institutions" / "example").policy
    assert rule_name(policy, "personal-data", "lv") == "Personas dati"  # its guideline
    assert rule_name(policy, "read-only", "sv") == "Endast läsning"  # an access clause
    assert rule_name(policy, "made-up", "en") == "made-up"
    assert role_name(policy, "intern", "sq") == "Praktikant ose kontraktor"
    assert role_name(policy, "gone", "en") == "gone"


@pytest.mark.parametrize(("agent", "said"), [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0 Safari/537.36 Edg/120.0", "Edge · Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 Firefox/121.0",
     "Firefox · macOS"),
    ("curl/8.0", "curl/8.0"),
])
def test_browsers_by_name(agent: str, said: str) -> None:
    assert browser_of(agent) == said

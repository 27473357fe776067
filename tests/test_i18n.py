"""Every text users see exists in English, Latvian, Swedish and Albanian, with the same
placeholders; Accept-Language picks the language."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from proxy.i18n import LANGUAGES, Translator, catalog, negotiate

DOMAINS = sorted(p.stem for p in (Path(__file__).parents[1] / "proxy" / "locales").glob("*.yaml"))


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_there_are_catalogs() -> None:
    assert {"gateway", "service"} <= set(DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_key_in_every_language_with_the_same_placeholders(domain: str) -> None:
    for key, texts in catalog(domain).items():
        missing = [lang for lang in LANGUAGES if not texts.get(lang, "").strip()]
        assert not missing, f"{domain}.{key} lacks {missing}"
        english = _fields(texts["en"])
        for lang in LANGUAGES:
            assert _fields(texts[lang]) == english, f"{domain}.{key} [{lang}] placeholders"


@pytest.mark.parametrize(("header", "lang"), [
    (None, "en"),
    ("", "en"),
    ("lv-LV,lv;q=0.9,en;q=0.8", "lv"),
    ("de-DE,sv;q=0.7,en;q=0.5", "sv"),
    ("en;q=0.3,sq;q=0.9", "sq"),
    ("fr, de", "en"),
    ("lv;q=0", "en"),
    ("se", "sv"),
])
def test_negotiate(header: str | None, lang: str) -> None:
    assert negotiate(header) == lang


def test_translator_falls_back_to_english_for_an_unknown_language() -> None:
    assert Translator("service", "de")("logout") == "Log out"
    assert Translator("service", "lv")("logout") == "Iziet"

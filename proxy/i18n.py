"""Texts users see, in English, Latvian, Swedish and Albanian.

Each part of Sargs keeps its texts in ``proxy/locales/<domain>.yaml`` as
``key: {en: …, lv: …, sv: …, sq: …}``; every key must exist in every language (a test
checks). ``{name}`` placeholders are filled with ``str.format``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

LANGUAGES = ("en", "lv", "sv", "sq")
DEFAULT = "en"
_DIR = Path(__file__).parent / "locales"


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """Pick a supported language from an Accept-Language header (q-values honoured)."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang == "se":  # a common mistake for Swedish (se is Northern Sami)
            lang = "sv"
        if lang in LANGUAGES and q > 0:
            choices.append((-q, i, lang))
    return min(choices)[2] if choices else default


@cache
def catalog(domain: str) -> dict[str, dict[str, str]]:
    data = yaml.safe_load((_DIR / f"{domain}.yaml").read_text(encoding="utf-8")) or {}
    return {str(k): {str(lang): str(text) for lang, text in v.items()} for k, v in data.items()}


def text(domain: str, key: str, lang: str, **values: object) -> str:
    entry = catalog(domain)[key]
    template = entry.get(lang) or entry[DEFAULT]
    return template.format(**values) if values else template


class Translator:
    """``t = Translator("service", "lv"); t("title")``"""

    def __init__(self, domain: str, lang: str) -> None:
        self.domain = domain
        self.lang = lang if lang in LANGUAGES else DEFAULT

    def __call__(self, key: str, **values: object) -> str:
        return text(self.domain, key, self.lang, **values)

"""Inflected forms of lexicon words, by simplemma's dictionaries (en, lv, sv, sq).

A one-word term stands for its lemma: "slepenība" also matches "slepenības" and
"slepenībai", "idiot" matches "idiots". At policy load each such term gets its lemma in
the languages of its list ("any": all four) and the first letters the lemma's forms
share (``prefix``); while reading a draft, a word that begins with those letters is
lemmatised (as typed, with its diacritics) and matches when its lemma is the term's,
diacritics included ("Pasta" is not a form of Swedish "påstå").
simplemma's dictionaries are loaded at policy load (``load``), not by the first draft.
"""

from __future__ import annotations

from functools import cache

import simplemma

from proxy.compliance.normalize import fold

LANGUAGES = ("en", "lv", "sv", "sq")
MIN_PREFIX = 4
"""Letters a draft word must share with a lemma before it is lemmatised."""


def languages(term_lang: str) -> tuple[str, ...]:
    return LANGUAGES if term_lang not in LANGUAGES else (term_lang,)


@cache
def load(lang: str) -> None:
    """Load ``lang``'s dictionary now (simplemma keeps it for the process)."""
    simplemma.lemmatize("a", lang=lang)


def lemma(word: str, lang: str) -> str:
    """The lemma of ``word`` (as typed) in ``lang``, in lower case with its diacritics:
    folded, Swedish "påstå" would be Italian "pasta"."""
    return simplemma.lemmatize(word, lang=lang).casefold()


def prefix(lemma: str) -> str:
    """The folded letters a word's forms are expected to begin with (empty: too short a
    word)."""
    folded = fold(lemma)
    if len(folded) < MIN_PREFIX + 1:
        return ""
    return folded[: max(MIN_PREFIX, len(folded) - 3)]

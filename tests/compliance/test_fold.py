"""Folding a draft through the one-byte code space gives exactly what ``str.translate``
with the fold table gives, with the same map back to UTF-16 offsets."""

from __future__ import annotations

import random

import pytest

from proxy.compliance.normalize import (
    _DECODING,
    _MAX_LOOKUPS,
    Folded,
    _fold_translated,
    fold_text,
)

_BMP = [chr(i) for i in range(1, 0x10000) if not 0xD800 <= i <= 0xDFFF]


def _same(text: str) -> Folded:
    folded = fold_text(text)
    assert folded == _fold_translated(text), repr(text)
    return folded


def test_every_bmp_character_alone_and_between_letters() -> None:
    for char in _BMP:
        _same(char)
        _same(f"Ab{char}Cd")


def test_astral_characters_count_twice() -> None:
    folded = _same("😀 Slepeni 😀 Ārā 𝐓𝐎𝐏")
    assert folded.astral == (0, 10, 16, 17, 18)  # code point indices
    text = "👍 ĀRĀ 😀 TOP SECRET"
    folded = _same(text)
    assert folded.text == "👍 ara 😀 top secret"
    assert folded.astral == (0, 6)
    start = folded.text.index("top")
    assert folded.span(start, start + 3) == (10, 13)  # UTF-16 indices in the draft


def test_lengths_that_change_keep_their_spans() -> None:
    folded = _same("Straße  —  Ærø…")
    assert folded.text == "strasse — aero..."
    assert folded.starts is not None


def test_code_space_has_the_four_languages_letters() -> None:
    assert len(_DECODING) == 256
    for char in "āčēģīķļņšūžåäöëçÄÖÅËÇĀŠŽ’–—“”„«»\u00a0":
        assert char in _DECODING[128:]


@pytest.mark.parametrize("seed", range(40))
def test_random_mixes(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = (
        _DECODING[1:] * 4 + "".join(rng.sample(_BMP, 200)) + "😀👍🏽𝐓\u0301\u0308  \t\n…ßæ"
    )
    for size in (0, 1, 5, 40, 280):
        _same("".join(rng.choice(alphabet) for _ in range(size)))


def test_mostly_outside_the_code_space() -> None:
    cyrillic = "Министерство иностранных дел Латвии"
    assert len([c for c in cyrillic if not c.isascii()]) > _MAX_LOOKUPS
    assert _same(cyrillic).text == "министерство иностранных дел латвии"
    _same("Дом " * 3 + "Ārā")  # a few: looked up one by one


@pytest.mark.parametrize(
    "text",
    ["plain ascii", "Ārā 😀 x", "Дом " * 6 + "😀 👍", "Straße 😀  two  spaces 👍", "😀"],
)
def test_astral_indices_in_every_shape(text: str) -> None:
    """Utf16Index of the draft as typed is built from them (no second pass)."""
    expected = tuple(i for i, c in enumerate(text) if ord(c) > 0xFFFF)
    assert fold_text(text).astral == expected
    assert _fold_translated(text).astral == expected


@pytest.mark.parametrize("seed", range(10))
def test_ascii_drafts(seed: int) -> None:
    """Plain ASCII drafts take ``str.lower``: the same, tabs, breaks and runs of spaces
    included."""
    rng = random.Random(seed)
    alphabet = "".join(chr(i) for i in range(1, 128)) + "    aaaa"
    for size in (1, 3, 40, 280):
        _same("".join(rng.choice(alphabet) for _ in range(size)))
    _same("Plain  ASCII\\twith\\nbreaks")
    assert fold_text("TOP Secret, Ministry").text == "top secret, ministry"

"""Lexicon matching: every term of every rule in one Aho-Corasick automaton.

Built once per policy load; a scan costs the same however many terms the policy holds.
Terms are folded like the draft (``normalize``) and match on word boundaries. A term
reaches the forms people write it in:

- ``muļķ*`` is a stem: it matches any word it begins (muļķis, muļķim, mulkis);
- a one-word term of a language's list matches its inflected forms too (``inflect``:
  a draft word with the same lemma in simplemma's dictionary), so "slepenība" matches
  "slepenības", "slepenībai" …;
- a multi-word term matches joined ("topsecret") and hyphenated ("top-secret"), and,
  when its entry allows a ``gap``, with up to that many words between its words
  ("top very secret");
- a multi-word term may hold a stem in any word ("slepen* dokument*": "slepenajos
  dokumentos"); such a term is matched by expression, like a gapped one;
- a gapped term's expression runs only on a text holding the term's longest word (found
  by the same automaton): most texts hold none;
- the draft is read twice, as folded and as its word view (``Draft.words``: "1d10t",
  "i d i o t"), when the two differ.

A rule's exception phrases ("classified ads") cancel its terms inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ahocorasick_rs import AhoCorasick, Implementation, MatchKind

from proxy.compliance import inflect
from proxy.compliance.detectors import Hit
from proxy.compliance.normalize import Draft, fold


@dataclass(frozen=True, slots=True)
class Entry:
    """What a term stands for: a rule's term, an exception phrase, an embargo's term."""

    rule: str
    tag: str = "term"
    ref: int = -1
    """For embargo terms: the index of the embargo."""
    lemma: str = ""
    lang: str = ""
    """For tag "lemma": a word beginning with the key matches when its lemma in ``lang``
    is ``lemma`` (``inflect``)."""


@dataclass(frozen=True, slots=True)
class Term:
    """One lexicon line as the policy gives it."""

    text: str
    entry: Entry
    lang: str = "any"
    gap: int = 0


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


class Lexicon:
    def __init__(self, terms: Iterable[Term], inflections: bool = True) -> None:
        keyed: dict[tuple[str, bool], set[Entry]] = {}
        gapped: list[tuple[str, Entry]] = []
        joined: set[str] = set()

        def add(key: str, stem: bool, entry: Entry) -> None:
            if key:
                keyed.setdefault((key, stem), set()).add(entry)

        for term in terms:
            if "*" in term.text[:-1]:  # "slepen* dokument*": a stem inside the term
                parts = [fold(w) for w in term.text.split(" ")]
                bare = [w.rstrip("*") for w in parts]
                regex = _gapped(bare, [w.endswith("*") for w in parts], term.gap)
                i = _anchor(bare)
                add(bare[i], parts[i].endswith("*"), Entry(term.entry.rule, "gap", len(gapped)))
                gapped.append((regex, term.entry))
                continue
            stem = term.text.endswith("*")
            key = fold(term.text.rstrip("*"))
            add(key, stem, term.entry)
            words = key.split(" ")
            if len(words) > 1:
                add("".join(words), stem, term.entry)
                joined.add("".join(words))
                add("-".join(words), stem, term.entry)
                if term.gap > 0:
                    # looked for only where one of its words stands (``_anchor``)
                    anchor = words[_anchor(words)]
                    # a whole word unless it is a stem's: "you rat" is not looked
                    # for where "your" stands
                    stem_anchor = stem and anchor == words[-1]
                    add(anchor, stem_anchor, Entry(term.entry.rule, "gap", len(gapped)))
                    stems = [False] * (len(words) - 1) + [stem]
                    gapped.append((_gapped(words, stems, term.gap), term.entry))
            elif not stem and inflections and term.entry.tag == "term":
                for lang in inflect.languages(term.lang):
                    inflect.load(lang)
                    lemma = inflect.lemma(term.text, lang)
                    start = inflect.prefix(lemma)
                    if start and key.startswith(start[:3]):
                        entry = term.entry
                        add(start, True, Entry(entry.rule, "lemma", entry.ref, lemma, lang))
        self.rules = frozenset(entry.rule for entries in keyed.values() for entry in entries)
        self.size = len(keyed)
        keys = sorted({key for key, _ in keyed})
        self._keys = keys
        self._joined = [key in joined for key in keys]
        """Per key: a multi-word term written joined, which may also end a hashtag
        ("#DraftBudget2027" holds "budget2027")."""
        self._variants = [
            [(stem, tuple(keyed[(key, stem)])) for stem in (False, True) if (key, stem) in keyed]
            for key in keys
        ]
        self._automaton = (
            AhoCorasick(keys, matchkind=MatchKind.Standard, implementation=Implementation.DFA)
            if keys
            else None
        )
        self._gapped = [(re.compile(regex), entry) for regex, entry in gapped]

    def scan(self, text: str) -> list[tuple[Entry, int, int]]:
        """Every term occurrence in folded ``text`` on word boundaries (stems extended
        to the word's end): (entry, start, end)."""
        out: list[tuple[Entry, int, int]] = []
        if self._automaton is not None:
            n = len(text)
            variants = self._variants
            for i, start, end in self._automaton.find_matches_as_indexes(text, overlapping=True):
                inside = start > 0 and _word(text[start]) and _word(text[start - 1])
                if inside and not (self._joined[i] and _in_hashtag(text, start)):
                    continue
                open_end = end < n and _word(text[end - 1]) and _word(text[end])
                for stem, entries in variants[i]:
                    stop = end
                    if stem:
                        while stop < n and _word(text[stop]):
                            stop += 1
                    elif open_end:
                        continue
                    out += [(entry, start, stop) for entry in entries]
        if self._gapped:
            gaps = sorted({e.ref for e, _, _ in out if e.tag == "gap"})
            out = [hit for hit in out if hit[0].tag != "gap"] if gaps else out
            for k in gaps:
                regex, entry = self._gapped[k]
                out += [(entry, m.start(), m.end()) for m in regex.finditer(text)]
        return out

    def find(self, draft: Draft) -> list[Hit]:
        found = {(e, *draft.span(s, t)) for e, s, t in self.scan(draft.folded)}
        disguised = set()
        words = draft.words()
        views = []
        if words != draft.folded:
            views = [(view, draft.words_span) for view in {words, draft.words_l()}]
        if draft.words_apart() != words:
            views.append((draft.words_apart(), draft.apart_span))
        for view, span in views:
            for e, s, t in self.scan(view):
                hit = (e, *span(s, t))
                if hit not in found and _letters(draft.typed(hit[1], hit[2])):
                    found.add(hit)
                    disguised.add(hit)
        for hit in [h for h in found if h[0].tag == "lemma"]:
            found.discard(hit)
            entry, start, end = hit
            word = draft.typed(start, end)
            if inflect.lemma(word, entry.lang) == entry.lemma:
                found.add((Entry(entry.rule, "term", entry.ref), start, end))
        shields: dict[str, list[tuple[int, int]]] = {}
        for entry, start, end in found:
            if entry.tag == "except":
                shields.setdefault(entry.rule, []).append((start, end))
        out = []
        for entry, start, end in sorted(found, key=lambda f: (f[1], f[2], f[0].rule)):
            shield = shields.get(entry.rule)
            if entry.tag != "term" or (shield and any(a <= start and end <= b for a, b in shield)):
                continue
            disguise = bool(disguised) and (entry, start, end) in disguised
            out.append(Hit(entry.rule, start, end, ref=entry.ref, disguised=disguise))
        return out


def _anchor(words: list[str]) -> int:
    """The word a multi-word term waits for: one with a digit (a year is rare in a post:
    "budžeta projekt* 2027" waits for "2027"), else the longest, the last of equally long
    ones (short words such as "to", "you" or "të" are in most texts; "what a fool" waits
    for "fool")."""
    return max(
        reversed(range(len(words))),
        key=lambda k: (any(c.isdigit() for c in words[k]), len(words[k])),
    )


def _in_hashtag(text: str, start: int) -> bool:
    """Whether ``start`` is inside a word that begins with "#" (at most 64 characters
    back)."""
    i = start - 1
    while i >= 0 and start - i <= 64 and _word(text[i]):
        i -= 1
    return i >= 0 and text[i] == "#"


def _letters(word: str) -> bool:
    """Whether a word read in the word view holds letters as typed ("1d10t", not "505")."""
    return any(c.isalpha() for c in word)


def _gapped(words: list[str], stems: list[bool], gap: int) -> str:
    """A regex for ``words`` with up to ``gap`` words between each two of them; a word
    whose ``stems`` flag is set matches any word it begins."""
    between = rf"(?:\W+\w+){{0,{gap}}}?\W+" if gap else r"\W+"
    pieces = [re.escape(w) + (r"\w*" if stem else "") for w, stem in zip(words, stems, strict=True)]
    # the look-behind after the first character: the expression is then looked for
    # where that character is, not tried at every one
    first = re.escape(words[0][0]) + r"(?<!\w.)" + pieces[0][len(re.escape(words[0][0])) :]
    return between.join([first, *pieces[1:]]) + r"(?!\w)"

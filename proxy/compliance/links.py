"""``unsafe-link``: link shorteners, raw IP hosts, plain http, look-alikes of the
institution's own domains.

Links with a scheme (``https://…``) and bare host names (``bit.ly/x``,
``example-gov.lv``) are both examined; plain http and raw IP hosts need a scheme.
A look-alike is a host outside the institution's registered domains whose name, read
through a small homoglyph table (Cyrillic letters, 0→o, 1→l, rn→m …), equals an
institution's name under another suffix, differs from it by one edit (names of five
letters or more), or carries it with extra words ("example-gov.lv"), or a host that
puts an institution domain in front of another ("example.gov.lv.login.top").

Speed: bare host names are looked for only in the white-space-delimited words that hold
a dot followed by two letters (a host cannot span white space, so the matches are the
same as over the whole draft), and not in words inside a link with a scheme; links with
a scheme only just before each "://". Hosts at or under the institution's own registered
domains are known to be its own without tldextract when the suffix list has no rule
under those domains (checked once, at start). Nothing is remembered between drafts.
tests/compliance/test_detectors_equivalence.py compares all of this with a frozen copy
of the plain detector.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import tldextract

from proxy.compliance.config import Links
from proxy.compliance.prefilter import matches_at

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

_SCHEME_URL = re.compile(r"(?i)\b(https?)://(\[[0-9a-f:.]+\]|[^\s/?#<>\"'\[\]]+)[^\s<>\"']*")
_BARE_HOST = re.compile(
    r"(?i)(?<![\w@.:/-])((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63})(?![\w@-]|\.\w)"
    r"(?:/[^\s<>\"']*)?"
)
_TRAILING = ".,;:!?)]}'\""
_DOT_LETTERS = re.compile(r"\.[^\W\d_]{2}")
"""What every bare host holds (its last dot and the suffix's first letters)."""
_SPACE = re.compile(r"\s")

_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ӏ": "l", "к": "k", "м": "m", "т": "t",
        "0": "o", "1": "l", "3": "e", "5": "s", "7": "t", "|": "l", "!": "l",
    }
)


@dataclass(slots=True)  # made per draft: see normalize.Folded
class LinkSpan:
    start: int
    end: int
    kind: str
    """shortener, raw-ip, http or look-alike: selects the rule's message."""


def _split(host: str) -> tuple[str, str, str]:
    ext = _EXTRACT(host)
    return ext.subdomain, ext.domain, ext.suffix


def skeleton(label: str) -> str:
    """A label as it looks: homoglyphs mapped to the Latin letters they imitate."""
    text = label.casefold().translate(_HOMOGLYPHS)
    for a, b in (("rn", "m"), ("vv", "w"), ("cl", "d")):
        text = text.replace(a, b)
    return text


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal string alignment distance, giving up above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


class LinkChecker:
    def __init__(self, config: Links, own_domains: list[str]) -> None:
        self.shorteners = {d.casefold() for d in config.shorteners}
        self.http_allowed = {d.casefold() for d in config.http_allowed}
        self.own: list[tuple[str, str, str]] = []  # (registered domain, label, skeleton)
        for domain in own_domains:
            _, label, suffix = _split(domain)
            if label:
                self.own.append((f"{label}.{suffix}" if suffix else label, label, skeleton(label)))
        rules = _EXTRACT.tlds
        self._own_exact = {
            registered
            for registered, label, _ in self.own
            if registered not in self.shorteners
            and "." not in label
            and not label.startswith("xn--")
            and not any(r.endswith(registered) for r in rules)  # "!x", "*.x", "a.x"
        }
        """Own registered domains under which the suffix list has no rule: tldextract splits
        a host equal to one, or ending with "." and one, into that domain (its walk down
        the suffix list stops at the same label), so ``_host_kind`` says it is our own."""
        self._own_tails = tuple("." + registered for registered in sorted(self._own_exact))

    def find(self, text: str) -> list[LinkSpan]:
        out: list[LinkSpan] = []
        taken: list[tuple[int, int]] = []
        if "://" in text:
            for m in matches_at(_SCHEME_URL, text, _scheme_places(text)):
                start, end = m.start(), _trim(text, m.start(), m.end())
                taken.append((start, end))
                kind = self._scheme_kind(m.group(1).lower(), m.group(2))
                if kind:
                    out.append(LinkSpan(start, end, kind))
        for word_start, word_end in _words_with_hosts(text):
            if any(a <= word_start and word_end <= b for a, b in taken):
                continue  # inside a link with a scheme: whatever it holds is skipped below
            for m in _BARE_HOST.finditer(text, word_start, word_end):
                start, end = m.start(), _trim(text, m.start(), m.end())
                if any(start < b and a < end for a, b in taken):
                    continue
                kind = self._host_kind(m.group(1).casefold())
                if kind:
                    out.append(LinkSpan(start, end, kind))
        return out

    def _scheme_kind(self, scheme: str, authority: str) -> str | None:
        host = authority.rsplit("@", 1)[-1]
        host = host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
        host = host.rstrip(_TRAILING).rstrip(".").casefold()
        if _is_ip(host):
            return "raw-ip"
        kind = self._host_kind(host)
        if kind:
            return kind
        if scheme == "http" and host not in self.http_allowed:
            return "http"
        return None

    def _host_kind(self, host: str) -> str | None:
        if host in self.shorteners:
            return "shortener"
        if host in self._own_exact or host.endswith(self._own_tails):
            return None  # what the split below decides for these, without the split
        sub, label, suffix = _split(host)
        if not label:
            return None
        registered = f"{label}.{suffix}" if suffix else label
        if registered in self.shorteners:
            return "shortener"
        if any(registered == own[0] for own in self.own):
            return None
        shape = skeleton(label)
        for own_registered, own_label, own_skeleton in self.own:
            if f".{own_registered}." in f".{sub}.":
                return "look-alike"
            if shape == own_skeleton:
                return "look-alike"
            if len(own_label) >= 5 and edit_distance(shape, own_skeleton, 1) <= 1:
                return "look-alike"
            if len(own_label) >= 4 and own_skeleton in re.split(r"[-.]", shape):
                return "look-alike"
            if len(own_label) >= 5 and shape.startswith(own_skeleton) and shape != own_skeleton:
                return "look-alike"
        return None


def _is_ip(host: str) -> bool:
    if not host or not (host[0].isdigit() or ":" in host):  # neither IPv4 nor IPv6
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _scheme_places(text: str) -> list[int]:
    """Where a link with a scheme may begin: five characters before a "://" that follows
    an "s" ("https"), four before one that follows a "p" ("http")."""
    places = []
    at = text.find("://")
    while at >= 0:
        last = text[at - 1 : at]
        if last in ("s", "S") and at >= 5:
            places.append(at - 5)
        elif last in ("p", "P") and at >= 4:
            places.append(at - 4)
        at = text.find("://", at + 3)
    return places


def _words_with_hosts(text: str) -> list[tuple[int, int]]:
    """[start, end) of each white-space-delimited word holding a dot and two letters, or
    of a little more: the start is taken after the last plain space before the dot
    (``rfind``, in C), which may leave a tab or other white space and what precedes it in
    the window. That adds no host: a host does not span white space, and the words in
    between hold no dot with two letters (else they would have been found first)."""
    words: list[tuple[int, int]] = []
    done = 0
    for m in _DOT_LETTERS.finditer(text):
        dot = m.start()
        if dot < done:
            continue
        start = max(text.rfind(" ", done, dot) + 1, done)
        space = _SPACE.search(text, m.end())
        done = space.start() if space else len(text)
        words.append((start, done))
    return words


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return end

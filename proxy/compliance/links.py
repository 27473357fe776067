"""``unsafe-link``: link shorteners, raw IP hosts, plain http, look-alikes of the
institution's own domains.

Links with a scheme (``https://…``) and bare host names (``bit.ly/x``,
``example-gov.lv``) are both examined; plain http and raw IP hosts need a scheme.
A look-alike is a host outside the institution's registered domains whose name, read
through Unicode's confusables (Cyrillic and Greek letters, via ``normalize.fold``) and
digits that pass for letters (0→o, 1→l, rn→m …), equals an
institution's name under another suffix, differs from it by one edit (names of five
letters or more), or carries it with extra words ("example-gov.lv"), or a host that
puts an institution domain in front of another ("example.gov.lv.login.top"), also with
dashes for its dots ("mk.gov-lv.info").

Links are read in the draft as typed with its hidden characters removed
(``normalize.HIDDEN``), so "bit\u200b.ly" is "bit.ly".
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import tldextract

from proxy.compliance.config import Links
from proxy.compliance.detectors import Hit
from proxy.compliance.normalize import HIDDEN, Draft, fold

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

_SCHEME_URL = re.compile(r"(?i)\b(https?)://(\[[0-9a-f:.]+\]|[^\s/?#<>\"'\[\]]+)[^\s<>\"']*")
_BARE_HOST = re.compile(
    r"(?i)(?<![\w@.:/-])((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63})(?![\w@-]|\.\w)"
    r"(?:/[^\s<>\"']*)?"
)
_TRAILING = ".,;:!?)]}'\""
_DOT_LETTERS = re.compile(r"\.[^\W\d_]{2}")
"""What every bare host holds (its last dot and the suffix's first letters)."""

_DEFANGED = re.compile(r"[\[({]\.[\])}]")
"""A dot in brackets: "bit[.]ly"."""

_DIGITS_AS_LETTERS = str.maketrans(
    {"0": "o", "1": "l", "3": "e", "5": "s", "7": "t", "|": "l", "!": "l"}
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
    text = fold(label).translate(_DIGITS_AS_LETTERS)
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
    rules = frozenset({"unsafe-link"})

    def __init__(self, config: Links, own_domains: list[str]) -> None:
        self.shorteners = {d.casefold() for d in config.shorteners}
        self.http_allowed = {d.casefold() for d in config.http_allowed}
        self.own: list[tuple[str, str, str]] = []  # (registered domain, label, skeleton)
        for domain in own_domains:
            _, label, suffix = _split(domain)
            if label:
                self.own.append((f"{label}.{suffix}" if suffix else label, label, skeleton(label)))

    def find(self, draft: Draft) -> list[Hit]:
        text = draft.text
        found = self.spans(draft.visible)
        visible = draft.visible
        if ("[." in visible or "(." in visible or "{." in visible) and _DEFANGED.search(visible):
            found += self._defanged(draft.visible, found)
        if len(draft.visible) == len(text):
            return [Hit("unsafe-link", draft.utf16(s.start), draft.utf16(s.end), s.kind)
                    for s in found]
        kept = [i for i, c in enumerate(text) if not HIDDEN.fullmatch(c)]
        return [
            Hit("unsafe-link", draft.utf16(kept[s.start]), draft.utf16(kept[s.end - 1] + 1), s.kind)
            for s in found
        ]

    def _defanged(self, text: str, found: list[LinkSpan]) -> list[LinkSpan]:
        """Links written "bit[.]ly", "bit(.)ly" (defanged: still a link to whoever
        copies it), read with the brackets taken out."""
        pieces: list[str] = []
        index: list[int] = []
        done = 0
        for m in _DEFANGED.finditer(text):
            pieces.append(text[done : m.start()] + ".")
            index.extend(range(done, m.start() + 1))
            done = m.end()
        pieces.append(text[done:])
        index.extend(range(done, len(text)))
        out = []
        for s in self.spans("".join(pieces)):
            start, end = index[s.start], index[s.end - 1] + 1
            if not any(start < f.end and f.start < end for f in found):
                out.append(LinkSpan(start, end, s.kind))
        return out

    def spans(self, text: str) -> list[LinkSpan]:
        """Unsafe links in ``text`` (code point offsets)."""
        out: list[LinkSpan] = []
        taken: list[tuple[int, int]] = []
        for m in _SCHEME_URL.finditer(text) if "://" in text else ():
            start, end = m.start(), _trim(text, m.start(), m.end())
            taken.append((start, end))
            kind = self._scheme_kind(m.group(1).lower(), m.group(2))
            if kind:
                out.append(LinkSpan(start, end, kind))
        for m in _BARE_HOST.finditer(text) if _DOT_LETTERS.search(text) else ():
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
        sub, label, suffix = _split(host)
        if not label:
            return None
        registered = f"{label}.{suffix}" if suffix else label
        if registered in self.shorteners:
            return "shortener"
        if any(registered == own[0] for own in self.own):
            return None
        shape = skeleton(label)
        dotted = f".{host.replace('-', '.')}."  # "mk.gov-lv.info" reads "mk.gov.lv.info"
        for own_registered, own_label, own_skeleton in self.own:
            if f".{own_registered}." in f".{sub}." or f".{own_registered}." in dotted:
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


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return end

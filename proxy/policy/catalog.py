"""Which platform a host belongs to, and whether a request is a post or a listed read.

Hosts are matched on their registered domain (tldextract with its bundled public-suffix
snapshot: nothing is fetched) and on any longer catalog entry below it, so that
``m.facebook.com`` is Facebook and ``social.example.net`` can be a Mastodon instance
without claiming all of ``example.net``.

Paths are matched in canonical form only (``proxy.policy.canonical``: decoded, dot
segments resolved, ``;parameters`` cut, case folded, no trailing slash); patterns are
folded the same way. The method is not part of a match: callers ask only for unsafe
requests (anything but GET, HEAD, OPTIONS), and every unsafe request to a posting path is
a post.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

import tldextract

from proxy.policy.model import Platform, PostingEndpoint, ReadingCall

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class HostKind(StrEnum):
    site = "site"
    media = "media"


class HostMatch(NamedTuple):
    platform: str
    kind: HostKind


@lru_cache(maxsize=65536)
def registered_domain(host: str) -> str:
    """``www.facebook.com`` → ``facebook.com``; IP addresses and bare names as given."""
    parts = _EXTRACT(host.lower().rstrip("."))
    return parts.top_domain_under_public_suffix or host.lower()


def _compile_path(pattern: str) -> re.Pattern[str]:
    """A catalog path pattern as a regular expression over canonical paths."""
    pattern = pattern.lower().rstrip("/") or "/"
    out = []
    for part in re.split(r"(\*\*|\*)", pattern):
        if part == "**":
            out.append(".*")
        elif part == "*":
            out.append("[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + "$")


@dataclass(frozen=True)
class _Endpoint:
    spec: PostingEndpoint
    pattern: re.Pattern[str]
    hosts: frozenset[str]


@dataclass(frozen=True)
class _Reading:
    spec: ReadingCall
    pattern: re.Pattern[str]
    hosts: frozenset[str]
    operations: frozenset[str]


class Catalog:
    """Host and posting-endpoint lookups over the platforms of a policy."""

    def __init__(self, platforms: dict[str, Platform]) -> None:
        self._hosts: dict[str, HostMatch] = {}
        for platform_id, platform in platforms.items():
            for domain in platform.domains:
                self._hosts[domain] = HostMatch(platform_id, HostKind.site)
            for domain in platform.media_domains:
                self._hosts[domain] = HostMatch(platform_id, HostKind.media)
        self._endpoints: dict[str, list[_Endpoint]] = {
            platform_id: [
                _Endpoint(spec, _compile_path(spec.path), frozenset(spec.hosts))
                for spec in platform.posting
            ]
            for platform_id, platform in platforms.items()
        }
        self._reading: dict[str, list[_Reading]] = {
            platform_id: [
                _Reading(spec, _compile_path(spec.path), frozenset(spec.hosts),
                         frozenset(spec.operations))
                for spec in platform.reading
            ]
            for platform_id, platform in platforms.items()
        }
        self.platforms = platforms
        self.match = lru_cache(maxsize=16384)(self._match)

    def _match(self, host: str) -> HostMatch | None:
        host = host.lower().rstrip(".")
        base = registered_domain(host)
        # Walk from the full host up to its registered domain, most specific first.
        labels = host.split(".")
        stop = len(base.split("."))
        for i in range(0, len(labels) - stop + 1):
            hit = self._hosts.get(".".join(labels[i:]))
            if hit is not None:
                return hit
        return None

    def posting_endpoint(self, platform: str, host: str, path: str) -> PostingEndpoint | None:
        """The posting endpoint an unsafe request to ``host`` and canonical ``path`` hits."""
        host = host.lower().rstrip(".")
        for endpoint in self._endpoints.get(platform, ()):
            if endpoint.hosts and host not in endpoint.hosts:
                continue
            if endpoint.pattern.match(path):
                return endpoint.spec
        return None

    def reading_call(
        self, platform: str, host: str, path: str, operation: str | None
    ) -> ReadingCall | None:
        """The listed reading call an unsafe request is, given its GraphQL operation name."""
        host = host.lower().rstrip(".")
        for call in self._reading.get(platform, ()):
            if call.hosts and host not in call.hosts:
                continue
            if call.operations and operation not in call.operations:
                continue
            if call.pattern.match(path):
                return call.spec
        return None

    def domains(self) -> list[str]:
        """Every catalog domain (site and media), for PAC files and interception lists."""
        return sorted(self._hosts)

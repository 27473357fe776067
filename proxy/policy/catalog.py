"""Which platform a host belongs to, and whether a request is a post.

Hosts are matched on their registered domain (tldextract with its bundled public-suffix
snapshot: nothing is fetched) and on any longer catalog entry below it, so that
``m.facebook.com`` is Facebook and ``social.example.net`` can be a Mastodon instance
without claiming all of ``example.net``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

import tldextract

from proxy.policy.model import Platform, PostingEndpoint

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
    out = []
    for part in re.split(r"(\*\*|\*)", pattern):
        if part == "**":
            out.append(".*")
        elif part == "*":
            out.append("[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"/?(?:\?.*)?$")


@dataclass(frozen=True)
class _Endpoint:
    spec: PostingEndpoint
    pattern: re.Pattern[str]
    hosts: frozenset[str]


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

    def posting_endpoint(
        self, platform: str, host: str, method: str, path: str
    ) -> PostingEndpoint | None:
        for endpoint in self._endpoints.get(platform, ()):
            if endpoint.spec.method != method.upper():
                continue
            if endpoint.hosts and host.lower() not in endpoint.hosts:
                continue
            if endpoint.pattern.match(path):
                return endpoint.spec
        return None

    def domains(self) -> list[str]:
        """Every catalog domain (site and media), for PAC files and interception lists."""
        return sorted(self._hosts)

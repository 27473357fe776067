"""Content-Security-Policy: let the injected content script run, loosen nothing else.

Pure functions (no mitmproxy, no I/O). The gateway injects one external script,
``/__sargs/static/compose-guard.js`` on the page's own host, and the script calls
``/__sargs/api/…`` on that same host. For every *enforced* policy of the page (several
``Content-Security-Policy`` headers, comma-joined policies, ``<meta http-equiv>`` tags;
report-only policies are left alone) :func:`adjust` does the least that lets both through,
in this order of preference:

1. The page's policy carries a nonce for scripts: our tag carries that same nonce and the
   policy is not changed (this also holds under ``'strict-dynamic'``).
2. The policy already allows the script URL (``'self'``, a matching host or scheme
   source, ``*``): no change.
3. Otherwise the narrowest source is added to the directive that governs script elements
   (``script-src-elem``, else ``script-src``; when only ``default-src`` governs, a
   ``script-src`` copying it is created so that images, styles and frames keep
   ``default-src`` untouched):

   - with ``'strict-dynamic'`` host sources are ignored, so a nonce is added (the page's
     nonce if it has one elsewhere, else a fresh one of ours). ``'strict-dynamic'``
     already disables ``'unsafe-inline'``, so a nonce takes nothing away from the page.
   - otherwise the exact script URL is added. Never a nonce or hash there: adding one to a
     list holding ``'unsafe-inline'`` would switch ``'unsafe-inline'`` off and break the
     page's own inline scripts.

``connect-src`` (falling back to ``default-src``) is handled the same way, with the
``/__sargs/api/`` path prefix on the page's origin as the narrowest source (nonces do
not apply to fetches).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

SCRIPT_PATH = "/__sargs/static/compose-guard.js"
API_PATH = "/__sargs/api/"

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_NONCE = re.compile(r"^'nonce-([A-Za-z0-9+/_=-]+)'$", re.IGNORECASE)
_HASH = re.compile(r"^'(sha256|sha384|sha512)-[A-Za-z0-9+/_=-]+'$", re.IGNORECASE)
_SCHEME_SOURCE = re.compile(r"^([a-z][a-z0-9+.-]*):$", re.IGNORECASE)
_HOST_SOURCE = re.compile(
    r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?"
    r"(?P<host>\*|(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*)"
    r"(?::(?P<port>\*|[0-9]+))?"
    r"(?P<path>/[^?#]*)?$",
    re.IGNORECASE,
)


class Origin(NamedTuple):
    """The page's origin as the browser sees it (scheme, host, port)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, scheme: str, host: str, port: int | None = None) -> Origin:
        scheme = scheme.lower()
        return cls(scheme, host.lower().rstrip("."), port or _DEFAULT_PORTS.get(scheme, 0))

    def url(self, path: str) -> str:
        default = _DEFAULT_PORTS.get(self.scheme)
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{path}"


@dataclass
class Directive:
    name: str
    """Lower-cased directive name."""
    sources: list[str]
    """Source expressions as written (keywords keep their quotes)."""

    def has(self, keyword: str) -> bool:
        return any(s.lower() == keyword for s in self.sources)

    def nonces(self) -> list[str]:
        return [m.group(1) for s in self.sources if (m := _NONCE.match(s))]

    def has_hash(self) -> bool:
        return any(_HASH.match(s) for s in self.sources)


@dataclass
class Policy:
    """One serialized policy: its directives in order; the first of a name wins."""

    directives: list[Directive] = field(default_factory=list)

    def get(self, name: str) -> Directive | None:
        for directive in self.directives:
            if directive.name == name:
                return directive
        return None

    def effective(self, *chain: str) -> Directive | None:
        """The directive that governs a fetch: the first of ``chain`` present."""
        for name in chain:
            found = self.get(name)
            if found is not None:
                return found
        return None

    def __str__(self) -> str:
        return "; ".join(" ".join([d.name, *d.sources]) for d in self.directives)


SCRIPT_ELEM = ("script-src-elem", "script-src", "default-src")
SCRIPT_LEGACY = ("script-src", "default-src")
"""What browsers without ``script-src-elem`` (older Firefox and Safari) use instead."""
CONNECT = ("connect-src", "default-src")


def parse_policy(text: str) -> Policy:
    """Parse one serialized policy (CSP3 §2.2.1): directives split on ';'."""
    policy = Policy()
    seen: set[str] = set()
    for token in text.split(";"):
        parts = token.strip().split()
        if not parts:
            continue
        name = parts[0].lower()
        if name in seen:  # duplicates are ignored by browsers; drop them the same way
            continue
        seen.add(name)
        policy.directives.append(Directive(name, parts[1:]))
    return policy


def parse_header(values: Iterable[str]) -> list[Policy]:
    """All policies of one or more header values (each may hold comma-joined policies)."""
    out: list[Policy] = []
    for value in values:
        for text in value.split(","):
            policy = parse_policy(text)
            if policy.directives:
                out.append(policy)
    return out


def _port_matches(
    source_port: str | None, source_scheme: str | None, url_port: int, url_scheme: str
) -> bool:
    if source_port == "*":
        return True
    if source_port is None:
        default = _DEFAULT_PORTS.get((source_scheme or url_scheme).lower())
        if url_port == default:
            return True
        # http://host allows https://host:443 (upgrade); ws likewise.
        return (source_scheme or url_scheme).lower() in ("http", "ws") and url_port == 443
    port = int(source_port)
    if port == url_port:
        return True
    return port == 80 and url_port == 443 and url_scheme in ("https", "wss")


def _scheme_matches(source: str, url_scheme: str) -> bool:
    source = source.lower()
    return source == url_scheme or (source, url_scheme) in (("http", "https"), ("ws", "wss"))


def _host_matches(pattern: str, host: str) -> bool:
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


def _path_matches(source_path: str | None, url_path: str) -> bool:
    if not source_path or source_path == "/":
        return True
    want, have = unquote(source_path), unquote(url_path)
    if want.endswith("/"):
        return have.startswith(want)
    return have == want


def source_matches_url(source: str, url: str, origin: Origin) -> bool:
    """Whether one source expression allows fetching ``url`` from a page at ``origin``."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    lowered = source.lower()
    if lowered == "'self'":
        if (scheme, host, port) == origin:
            return True
        # 'self' also allows the secure upgrade of the page's own origin.
        return (
            host == origin.host
            and origin.scheme in ("http", "ws")
            and scheme in ("https", "wss")
            and port == 443
        )
    if source == "*":
        return scheme in ("http", "https", "ws", "wss") or scheme == origin.scheme
    scheme_source = _SCHEME_SOURCE.match(source)
    if scheme_source:
        return _scheme_matches(scheme_source.group(1), scheme)
    if source.startswith("'"):
        return False  # other keywords, nonces and hashes do not match by URL
    host_source = _HOST_SOURCE.match(source)
    if not host_source:
        return False
    source_scheme = host_source.group("scheme")
    if source_scheme:
        if not _scheme_matches(source_scheme, scheme):
            return False
    elif not _scheme_matches(origin.scheme, scheme):
        return False
    if host_source.group("host") != "*" and not _host_matches(host_source.group("host"), host):
        return False
    if not _port_matches(host_source.group("port"), source_scheme, port, scheme):
        return False
    return _path_matches(host_source.group("path"), parts.path)


def allows_url(directive: Directive | None, url: str, origin: Origin) -> bool:
    """Whether a directive (``None``: absent) lets a non-script fetch of ``url`` through."""
    if directive is None:
        return True
    return any(source_matches_url(s, url, origin) for s in directive.sources)


def allows_script(directive: Directive | None, url: str, origin: Origin, nonce: str | None) -> bool:
    """Whether an external ``<script src=url nonce=…>`` element may load under a directive."""
    if directive is None:
        return True
    if nonce is not None and nonce in directive.nonces():
        return True
    if directive.has("'strict-dynamic'"):
        return False  # host sources, 'self' and schemes are ignored under strict-dynamic
    return allows_url(directive, url, origin)


def page_nonce(policies: Sequence[Policy]) -> str | None:
    """The nonce a page's own scripts carry, if any enforced policy names one for scripts."""
    for policy in policies:
        for chain in (SCRIPT_ELEM, SCRIPT_LEGACY):
            directive = policy.effective(*chain)
            if directive is not None and directive.nonces():
                return directive.nonces()[0]
    return None


def _writable(policy: Policy, chain: tuple[str, ...]) -> Directive:
    """The directive to add a source to; splits it off ``default-src`` when that governs."""
    directive = policy.effective(*chain)
    assert directive is not None
    if directive.name == "default-src":
        own = Directive(chain[-2], list(directive.sources))
        policy.directives.append(own)
        directive = own
    if directive.has("'none'"):
        directive.sources = [s for s in directive.sources if s.lower() != "'none'"]
    return directive


class Result(NamedTuple):
    nonce: str | None
    """The nonce our script tag must carry (``None``: no nonce attribute)."""
    policies: list[str]
    """Each input policy text, adjusted (unchanged ones as given)."""
    changed: bool


@dataclass
class _Plan:
    nonce: str | None
    new_nonce: bool = False


def _ensure_script(
    policy: Policy, chain: tuple[str, ...], script: str, origin: Origin, plan: _Plan
) -> bool:
    directive = policy.effective(*chain)
    if allows_script(directive, script, origin, plan.nonce):
        return False
    assert directive is not None
    if directive.has("'strict-dynamic'"):
        if plan.nonce is None:
            plan.nonce = secrets.token_urlsafe(18)
            plan.new_nonce = True
        _writable(policy, chain).sources.append(f"'nonce-{plan.nonce}'")
    else:
        _writable(policy, chain).sources.append(script)
    return True


def _ensure_connect(policy: Policy, api: str, probe: str, origin: Origin) -> bool:
    directive = policy.effective(*CONNECT)
    if allows_url(directive, probe, origin):
        return False
    _writable(policy, CONNECT).sources.append(api)
    return True


def adjust(texts: Sequence[str], origin: Origin) -> Result:
    """Adjust each enforced policy text (one serialized policy each) for our script.

    ``texts`` are single policies (split comma-joined header values with
    :func:`split_header` first, or use :func:`adjust_header`).
    """
    policies = [parse_policy(t) for t in texts]
    plan = _Plan(page_nonce(policies))
    script = origin.url(SCRIPT_PATH)
    api = origin.url(API_PATH)
    probe = origin.url(API_PATH + "v1/check")
    out: list[str] = []
    changed = False
    for text, policy in zip(texts, policies, strict=True):
        touched = _ensure_script(policy, SCRIPT_ELEM, script, origin, plan)
        if policy.get("script-src-elem") is not None:
            touched |= _ensure_script(policy, SCRIPT_LEGACY, script, origin, plan)
        touched |= _ensure_connect(policy, api, probe, origin)
        changed |= touched
        out.append(str(policy) if touched else text)
    return Result(plan.nonce, out, changed)


def split_header(value: str) -> list[str]:
    """The single policies of one header value (comma-joined policies), blanks dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]

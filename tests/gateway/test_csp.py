"""CSP adjustment: the script runs, nothing else of the page's protection is loosened."""

from __future__ import annotations

import pytest

from proxy.gateway.csp import (
    Origin,
    adjust,
    allows_script,
    allows_url,
    parse_header,
    parse_policy,
    source_matches_url,
    split_header,
)

X = Origin.of("https", "x.com")
SCRIPT = "https://x.com/__sargs/static/compose-guard.js"
API = "https://x.com/__sargs/api/"


@pytest.mark.parametrize(
    ("source", "url", "expected"),
    [
        ("'self'", SCRIPT, True),
        ("'self'", "https://cdn.x.com/a.js", False),
        ("'self'", "http://x.com/a.js", False),
        ("*", SCRIPT, True),
        ("https:", SCRIPT, True),
        ("http:", SCRIPT, True),  # http: also allows https
        ("data:", SCRIPT, False),
        ("x.com", SCRIPT, True),
        ("*.x.com", SCRIPT, False),  # wildcard does not match the apex
        ("*.x.com", "https://abs.x.com/a.js", True),
        ("https://x.com", SCRIPT, True),
        ("http://x.com", SCRIPT, True),  # secure upgrade
        ("wss://x.com", SCRIPT, False),
        ("x.com:8443", SCRIPT, False),
        ("x.com:*", SCRIPT, True),
        ("x.com/__sargs/", SCRIPT, True),
        ("x.com/static/", SCRIPT, False),
        ("x.com/__sargs/static/compose-guard.js", SCRIPT, True),
        ("x.com/__sargs/static/other.js", SCRIPT, False),
        ("'unsafe-inline'", SCRIPT, False),
        ("'nonce-abc'", SCRIPT, False),
        ("'none'", SCRIPT, False),
    ],
)
def test_source_matching(source: str, url: str, expected: bool) -> None:
    assert source_matches_url(source, url, X) is expected


def test_self_on_a_non_default_port() -> None:
    origin = Origin.of("http", "127.0.0.1", 8000)
    assert source_matches_url("'self'", "http://127.0.0.1:8000/__sargs/x", origin)
    assert not source_matches_url("'self'", "http://127.0.0.1:8001/__sargs/x", origin)


def test_parse_keeps_first_of_duplicate_directives() -> None:
    policy = parse_policy("Script-Src 'self'; script-src *; img-src data:")
    directive = policy.get("script-src")
    assert directive is not None
    assert directive.sources == ["'self'"]
    assert str(policy) == "script-src 'self'; img-src data:"


def test_parse_header_splits_comma_joined_policies() -> None:
    policies = parse_header(["default-src 'self', script-src 'none'", "img-src *"])
    assert [str(p) for p in policies] == ["default-src 'self'", "script-src 'none'", "img-src *"]
    assert split_header("a 'self' , b *,") == ["a 'self'", "b *"]


@pytest.mark.parametrize(
    ("policy", "nonce", "expected"),
    [
        ("script-src 'nonce-abc' 'strict-dynamic'", "abc", True),
        ("script-src 'nonce-abc' 'strict-dynamic'", None, False),
        ("script-src 'self' 'strict-dynamic' 'nonce-abc'", None, False),  # self ignored
        ("script-src 'self'", None, True),
        ("script-src-elem 'none'; script-src 'self'", None, False),
        ("default-src 'self'", None, True),
        ("img-src 'none'", None, True),
    ],
)
def test_allows_script(policy: str, nonce: str | None, expected: bool) -> None:
    parsed = parse_policy(policy)
    directive = parsed.effective("script-src-elem", "script-src", "default-src")
    assert allows_script(directive, SCRIPT, X, nonce) is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # The page's own nonce: reused, policy untouched (with and without strict-dynamic).
        (
            "script-src 'nonce-r4nd0m' 'strict-dynamic' https: 'unsafe-inline'; object-src 'none'",
            None,
        ),
        ("script-src 'self' 'nonce-r4nd0m'; connect-src 'self'", None),
        # 'self' already allows the reserved path on the page's own host.
        ("default-src 'self'; img-src * data:", None),
        ("script-src 'self' 'unsafe-inline'; connect-src 'self' wss://x.com", None),
        ("script-src x.com; connect-src https:", None),
        ("frame-ancestors 'none'; upgrade-insecure-requests", None),
        # unsafe-inline and no 'self': add the exact URL, never a nonce (it would switch
        # unsafe-inline off for the page's inline scripts).
        (
            "script-src 'unsafe-inline' https://cdn.example; connect-src 'self'",
            f"script-src 'unsafe-inline' https://cdn.example {SCRIPT}; connect-src 'self'",
        ),
        # default-src governs: split off script-src / connect-src, default-src untouched.
        (
            "default-src https://cdn.example 'unsafe-inline'",
            "default-src https://cdn.example 'unsafe-inline'; "
            f"script-src https://cdn.example 'unsafe-inline' {SCRIPT}; "
            f"connect-src https://cdn.example 'unsafe-inline' {API}",
        ),
        # 'none' gives way to the single exact source.
        (
            "script-src 'none'; connect-src 'none'",
            f"script-src {SCRIPT}; connect-src {API}",
        ),
        # script-src-elem governs elements; script-src (older browsers) gets it too.
        (
            "script-src-elem https://cdn.example; script-src 'self'",
            f"script-src-elem https://cdn.example {SCRIPT}; script-src 'self'",
        ),
        (
            "script-src-elem 'self'; script-src https://cdn.example",
            f"script-src-elem 'self'; script-src https://cdn.example {SCRIPT}",
        ),
        # Hashes but no 'self': exact URL (hashes already switched unsafe-inline off).
        (
            "script-src 'sha256-AAAA'; connect-src 'self'",
            f"script-src 'sha256-AAAA' {SCRIPT}; connect-src 'self'",
        ),
    ],
)
def test_adjust_single_policy(given: str, expected: str | None) -> None:
    result = adjust([given], X)
    if expected is None:
        assert result.policies == [given]
        assert not result.changed
    else:
        assert result.policies == [expected]
        assert result.changed
    assert result.nonce == ("r4nd0m" if "nonce-r4nd0m" in given else None)


def test_strict_dynamic_with_hashes_only_gets_a_fresh_nonce() -> None:
    given = "script-src 'strict-dynamic' 'sha256-AAAA' 'unsafe-inline'; connect-src 'self'"
    result = adjust([given], X)
    assert result.nonce is not None
    assert len(result.nonce) >= 16
    assert result.policies == [
        f"script-src 'strict-dynamic' 'sha256-AAAA' 'unsafe-inline' 'nonce-{result.nonce}'; "
        "connect-src 'self'"
    ]
    # Each response gets its own nonce.
    assert adjust([given], X).nonce != result.nonce


def test_several_policies_each_adjusted_and_one_nonce_for_all() -> None:
    texts = [
        "script-src 'nonce-abc' 'strict-dynamic'",
        "script-src 'strict-dynamic' 'sha256-AAAA'",
        "default-src 'self'",
        "script-src https://cdn.example; connect-src https://api.example",
    ]
    result = adjust(texts, X)
    assert result.nonce == "abc"
    assert result.policies == [
        texts[0],
        "script-src 'strict-dynamic' 'sha256-AAAA' 'nonce-abc'",
        texts[2],
        f"script-src https://cdn.example {SCRIPT}; connect-src https://api.example {API}",
    ]
    # Every adjusted policy now allows the script carrying the chosen nonce.
    for text in result.policies:
        policy = parse_policy(text)
        assert allows_script(
            policy.effective("script-src-elem", "script-src", "default-src"), SCRIPT, X, "abc"
        )
        assert allows_url(
            policy.effective("connect-src", "default-src"), API + "v1/check", X
        )


def test_adjusted_policy_allows_nothing_else_new() -> None:
    given = "script-src 'unsafe-inline' https://cdn.example; connect-src https://api.example"
    result = adjust([given], X)
    policy = parse_policy(result.policies[0])
    script = policy.effective("script-src-elem", "script-src", "default-src")
    connect = policy.effective("connect-src", "default-src")
    for other in ("https://x.com/evil.js", "https://evil.example/a.js", "https://x.com/__sargs/"):
        assert not allows_script(script, other, X, None)
    for other in ("https://x.com/api/", "https://evil.example/__sargs/api/v1/check"):
        assert not allows_url(connect, other, X)

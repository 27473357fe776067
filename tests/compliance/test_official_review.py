"""Policy ``reviews.official_accounts``: every post as an official account asks for a
superior's review (an ``official-account`` finding whose only way forward is review)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.compliance.model import CheckRequest
from proxy.runtime import PolicyState
from tests.support.gateway import copy_policy

SUNDAY = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
"""Outside working hours: a personal post then has no working-hours warning."""

CLEAN = "Sveiki! Bibliotēka šodien atvērta līdz 19:00."


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """A copy of policies/ whose example institution asks for official-account reviews."""
    example = copy_policy(tmp_path)
    reviews = example / "reviews.yaml"
    reviews.write_text(reviews.read_text(encoding="utf-8").replace(
        "official_accounts: false", "official_accounts: true"), encoding="utf-8")
    return example.parent.parent


def _check(root: Path, policy: str, account: str, allowed: bool | None
           ) -> list[tuple[str, str, list[str]]]:
    state = PolicyState(root / policy)
    result = state.current.engine.check(
        CheckRequest(text=CLEAN, account=account, platform="x",  # type: ignore[arg-type]
                     official_allowed=allowed, lang="lv", at=SUNDAY), "v")
    return [(f.rule, f.severity, list(f.ways)) for f in result.findings]


def test_official_posts_need_review_where_the_policy_says_so(policies: Path) -> None:
    assert _check(policies, "institutions/example", "official", True) == [
        ("official-account", "block", ["review"])]
    assert _check(policies, "institutions/example", "personal", True) == []
    # Unknown author (a plain API call, `sargs check`): no account finding, as before.
    assert _check(policies, "institutions/example", "official", None) == []


def test_without_the_setting_an_authorized_official_post_is_clean(policies: Path) -> None:
    assert _check(policies, "base", "official", True) == []
    # Not authorized at all: the old finding, with the rule's usual ways.
    found = _check(policies, "base", "official", False)
    assert [(r, s) for r, s, _ in found] == [("official-account", "block")]
    assert found[0][2] != ["review"]

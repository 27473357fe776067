"""Allowances on SQLite and PostgreSQL: issued, carried, used exactly once, never the text."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from proxy.compliance.texthash import text_hash
from proxy.store import InvalidInput, allowances, audit, grants
from proxy.store.db import Store
from tests.store.conftest import T0

TEXT = "Call me on +371 2612 3456 about the merger"


def _issue(store: Store, **over: object) -> allowances.Allowance:
    args: dict[str, object] = {
        "user": "eva", "platform": "x", "text_hash": text_hash(TEXT), "kind": "proceed",
        "rules": ["personal-data"], "minutes": 10, "actor": "eva",
        "details": {"way": "justify", "reason": "public figure's official number"},
        "now": T0}
    args.update(over)
    return allowances.issue(store, **args)  # type: ignore[arg-type]


def test_issue_use_once_and_audit_without_text(store: Store) -> None:
    before = grants.current_sequence(store)
    made = _issue(store)
    assert grants.current_sequence(store) == before + 1
    assert [a.id for a in allowances.active(store, T0 + timedelta(minutes=1))] == [made.id]
    assert made.expires_at == T0 + timedelta(minutes=10)
    assert allowances.use(store, made.id, "gw-1", now=T0 + timedelta(minutes=2))
    # a second use (another gateway, a replay) gets nothing
    assert not allowances.use(store, made.id, "gw-2", now=T0 + timedelta(minutes=3))
    assert allowances.active(store, T0 + timedelta(minutes=3)) == []
    got = allowances.get(store, made.id)
    assert got is not None
    assert got.used_by == "gw-1"
    entries = audit.query(store, newest_first=False)
    assert [e.kind for e in entries] == ["post-override", "allowance-use"]
    assert entries[0].details["reason"] == "public figure's official number"
    assert entries[0].details["text_hash"] == text_hash(TEXT)
    assert entries[1].details["allowance"] == made.id
    dumped = json.dumps([dict(e.details) for e in entries])
    assert "2612" not in dumped
    assert "merger" not in dumped


def test_expired_or_foreign_allowance_is_not_used(store: Store) -> None:
    made = _issue(store)
    assert not allowances.use(store, made.id, "gw", now=T0 + timedelta(minutes=10))
    assert allowances.active(store, T0 + timedelta(minutes=10)) == []
    other = _issue(store)
    assert not allowances.use(store, other.id, "gw", now=T0, user="finn")
    assert not allowances.use(store, "missing", "gw", now=T0)
    assert allowances.use(store, other.id, "gw", now=T0, user="eva")
    assert allowances.purge(store, T0 + timedelta(hours=1)) == 2


@pytest.mark.parametrize(("field", "value"), [
    ("text_hash", "not-a-hash"), ("kind", "forever"), ("minutes", 0),
    ("minutes", 100_000), ("user", ""), ("platform", "")])
def test_bad_input_names_the_field(store: Store, field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as err:
        _issue(store, **{field: value})
    assert err.value.field == field
    assert allowances.active(store, T0) == []


def test_text_never_enters_the_audit(store: Store) -> None:
    with pytest.raises(InvalidInput):
        _issue(store, details={"text": TEXT})
    assert audit.query(store) == []


def test_json_round_trip_and_hostile_shapes(store: Store) -> None:
    made = _issue(store)
    again = allowances.Allowance.from_json(json.loads(json.dumps(made.to_json())))
    assert again == made
    for bad in ({**made.to_json(), "text_hash": "x"}, {**made.to_json(), "kind": "all"},
                {**made.to_json(), "expires_at": "2026-01-01T00:00:00"},
                {**made.to_json(), "rules": "personal-data"}):
        with pytest.raises((ValueError, TypeError)):
            allowances.Allowance.from_json(bad)

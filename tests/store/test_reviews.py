"""Reviews in the store, on SQLite and PostgreSQL: the draft is sealed at rest (read from
the raw row), opens only with its key and in its own row, and is gone once decided."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from proxy.compliance.texthash import text_hash
from proxy.store import (
    AlreadyDecided,
    InvalidInput,
    NotFound,
    SelfDecision,
    allowances,
    audit,
    auditverify,
)
from proxy.store import reviews as rv
from proxy.store.db import Store
from proxy.store.reviewkey import ReviewKey, ReviewKeyError, load
from tests.store.conftest import T0

DRAFT = "Pēc sēdes: ministre paziņos lēmumu 10:00. Zvaniet Annai +371 2912 3456."
NOTE = "Vai drīkstu šo publicēt?"


@pytest.fixture
def key(tmp_path: Path) -> ReviewKey:
    return load(tmp_path / "review.key")


def _raw(store: Store, review_id: str) -> dict[str, object]:
    with store.read() as conn:
        row = conn.execute(sa.text("SELECT * FROM reviews WHERE id = :i"),
                           {"i": review_id}).mappings().one()
    return dict(row)


def _submit(store: Store, key: ReviewKey, **kw: object) -> rv.Review:
    args: dict[str, object] = {"user": "eva", "platform": "x", "text": DRAFT, "note": NOTE,
                               "rules": ["personal-data", "embargo"], "now": T0}
    args.update(kw)
    return rv.submit(store, key, **args)  # type: ignore[arg-type]


def test_key_file_is_made_once_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "review.key"
    first = load(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load(path).id == first.id  # read back, not made again
    assert load(None, "ab" * 32).key == bytes.fromhex("ab" * 32)
    with pytest.raises(ReviewKeyError, match="SARGS_REVIEW_KEY"):
        load(path, "not-hex")
    (tmp_path / "bad.key").write_text("12\n")
    with pytest.raises(ReviewKeyError, match=r"bad\.key"):
        load(tmp_path / "bad.key")


def test_draft_is_sealed_at_rest_and_gone_after_approval(store: Store, key: ReviewKey) -> None:
    made = _submit(store, key)
    raw = _raw(store, made.id)
    sealed = bytes(raw["sealed"])  # type: ignore[arg-type]
    dumped = repr(raw).encode()
    for secret in (DRAFT, NOTE, "2912 3456", "ministre"):
        assert secret.encode() not in sealed
        assert secret.encode() not in dumped
        assert secret.encode("utf-16-le") not in sealed
    assert raw["text_hash"] == text_hash(DRAFT)
    assert raw["key_id"] == key.id
    assert rv.draft(store, key, made.id) == rv.Draft(DRAFT, NOTE)

    decided, allowance = rv.approve(store, made.id, "boss", "Labi, publicē.", minutes=30,
                                    now=T0 + timedelta(hours=1))
    assert decided.status == rv.APPROVED
    assert not decided.has_draft
    # Exactly this text, this author, this platform, once, for 30 minutes.
    assert (allowance.user, allowance.platform, allowance.kind) == ("eva", "x", "review")
    assert allowance.text_hash == text_hash(DRAFT)
    assert allowance.expires_at == T0 + timedelta(hours=1, minutes=30)
    assert [a.id for a in allowances.active(store, T0 + timedelta(hours=1))] == [allowance.id]
    assert rv.get(store, made.id) == decided
    assert decided.allowance_id == allowance.id
    raw = _raw(store, made.id)
    assert raw["sealed"] is None
    assert raw["key_id"] is None
    assert rv.draft(store, key, made.id) is None
    # The audit log names the hash and lengths, never the draft, note or comment.
    entries = sorted(audit.query(store), key=lambda e: e.seq)
    kinds = [e.kind for e in entries]
    assert kinds == ["review-request", "review-approve"]
    assert all(DRAFT not in str(e.details) and NOTE not in str(e.details)
               and "Labi" not in str(e.details) for e in entries)
    assert entries[1].details["text_hash"] == text_hash(DRAFT)
    assert entries[1].details["comment_length"] == len("Labi, publicē.")
    assert auditverify.verify(store).ok


def test_returned_draft_is_gone_and_comment_kept(store: Store, key: ReviewKey) -> None:
    made = _submit(store, key)
    back = rv.return_(store, made.id, "boss", "Remove the phone number.")
    assert back.status == rv.RETURNED
    assert back.comment == "Remove the phone number."
    assert _raw(store, made.id)["sealed"] is None
    assert rv.get(store, made.id) == back


def test_sealed_draft_opens_only_with_its_key_and_row(store: Store, key: ReviewKey,
                                                      tmp_path: Path) -> None:
    one, two = _submit(store, key), _submit(store, key, text="Another draft.")
    with pytest.raises(ReviewKeyError, match="another review key"):
        rv.draft(store, load(tmp_path / "other.key"), one.id)
    # An attacker with database access copies one row's sealed draft into another row.
    with store.write() as conn:
        conn.execute(sa.text("UPDATE reviews SET sealed = (SELECT sealed FROM reviews "
                             "WHERE id = :a) WHERE id = :b"), {"a": one.id, "b": two.id})
    with pytest.raises(ReviewKeyError, match="does not open"):
        rv.draft(store, key, two.id)


def test_decided_once_never_by_the_author(store: Store, key: ReviewKey) -> None:
    made = _submit(store, key)
    with pytest.raises(SelfDecision):
        rv.approve(store, made.id, "eva")
    with pytest.raises(NotFound):
        rv.withdraw(store, made.id, "mallory")  # only the author withdraws
    with pytest.raises(NotFound):
        rv.approve(store, "nope", "boss")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(
            lambda who: _try(lambda: rv.approve(store, made.id, who)),
            ["boss", "head", "chief", "deputy"]))
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert sum(isinstance(r, AlreadyDecided) for r in results) == 3
    with pytest.raises(AlreadyDecided):
        rv.return_(store, made.id, "boss", "too late")


def _try(fn: object) -> object:
    try:
        return fn()  # type: ignore[operator]
    except AlreadyDecided as exc:
        return exc


def test_withdraw_deletes_the_draft(store: Store, key: ReviewKey) -> None:
    made = _submit(store, key)
    gone = rv.withdraw(store, made.id, "eva")
    assert gone.status == rv.WITHDRAWN
    assert _raw(store, made.id)["sealed"] is None


@pytest.mark.parametrize(("field", "kwargs"), [
    ("text", {"text": "  \n "}),
    ("text", {"text": "x" * (rv.MAX_TEXT + 1)}),
    ("note", {"note": "n" * (rv.MAX_NOTE + 1)}),
    ("account", {"account": "shared"}),
    ("rules", {"rules": ["r"] * 21}),
    ("platform", {"platform": ""}),
])
def test_bad_input_names_the_field(store: Store, key: ReviewKey, field: str,
                                   kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as exc:
        _submit(store, key, **kwargs)
    assert exc.value.field == field
    assert rv.list_reviews(store) == []


def test_retention_expires_pending_and_deletes_decided(store: Store, key: ReviewKey) -> None:
    old = _submit(store, key, retention_days=7)
    decided = _submit(store, key, retention_days=7)
    rv.return_(store, decided.id, "boss", "no")
    fresh = _submit(store, key, retention_days=7, now=T0 + timedelta(days=3))
    assert rv.purge(store, now=T0 + timedelta(days=6)) == (0, 0)
    assert rv.purge(store, now=T0 + timedelta(days=7)) == (1, 1)
    expired = rv.get(store, old.id)
    assert expired is not None
    assert expired.status == rv.EXPIRED
    assert not expired.has_draft
    assert _raw(store, old.id)["sealed"] is None
    assert rv.get(store, decided.id) is None
    assert rv.draft(store, key, fresh.id) is not None
    assert rv.purge(store, now=T0 + timedelta(days=8)) == (0, 1)  # the expired row goes
    assert [r.id for r in rv.list_reviews(store)] == [fresh.id]
    assert "review-expire" in [e.kind for e in audit.query(store)]

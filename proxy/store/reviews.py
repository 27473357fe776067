"""Reviews: a draft the author explicitly sends to a superior before posting.

This is the one place Sargs stores a draft. The draft and the author's note are sealed
with AES-256-GCM under the review key (``reviewkey.py``, kept outside the database) and
bound to the review's id; the row keeps the sealed bytes only while the review is
pending. Life of a review (``status``)::

    pending ──approve──▶ approved   (an allowance lets exactly this text through once)
       │ ├───return───▶ returned   (with the reviewer's comment, for the author)
       │ ├──withdraw──▶ withdrawn  (the author changed their mind)
       └──(retention)─▶ expired

Every decision clears ``sealed`` in the same transaction that records it; an approval
then issues an allowance (``allowances.issue``, kind ``review``) that lets exactly the
reviewed text (its ``text_hash``) through the gateway once; ``purge``
(the service's housekeeping) expires pending reviews at ``purge_at`` (created + the
policy's ``reviews.retention_days``) and deletes decided rows then. Nothing here logs a
draft, and the audit log gets the text's hash, the rules and the comment's length only.

Rules the store enforces (whatever the caller): a review is decided once (a conditional
``UPDATE … WHERE status = 'pending'``; the loser of a race gets ``AlreadyDecided``), and
nobody reviews their own draft (``SelfDecision``). Who may review whom is policy
(``proxy.policy.scopes.may_review``), checked by the service before it calls ``approve``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from proxy.compliance.texthash import text_hash
from proxy.store import allowances, audit
from proxy.store.allowances import Allowance
from proxy.store.common import aware, new_id, text_field
from proxy.store.db import Store
from proxy.store.errors import AlreadyDecided, InvalidInput, NotFound, SelfDecision
from proxy.store.reviewkey import ReviewKey, ReviewKeyError
from proxy.store.schema import reviews

PENDING, APPROVED, RETURNED, WITHDRAWN, EXPIRED = (
    "pending", "approved", "returned", "withdrawn", "expired")
STATUSES = (PENDING, APPROVED, RETURNED, WITHDRAWN, EXPIRED)
MAX_TEXT = 50_000
"""Longest draft (the check API's limit)."""
MAX_NOTE = 1000
MAX_COMMENT = 2000
MAX_RULES = 20


@dataclass(frozen=True, slots=True)
class Review:
    """A review as the store holds it, without the draft (``draft`` opens that)."""

    id: str
    user: str
    platform: str
    account: str
    rules: tuple[str, ...]
    text_hash: str
    status: str
    created_at: datetime
    purge_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    comment: str | None = None
    """The reviewer's comment (shown to the author), kept until ``purge_at``."""
    allowance_id: str | None = None
    has_draft: bool = False


@dataclass(frozen=True, slots=True)
class Draft:
    text: str
    note: str


def _review(row: Row[Any]) -> Review:
    m = row._mapping
    return Review(id=m["id"], user=m["user"], platform=m["platform"], account=m["account"],
                  rules=tuple(m["rules"]), text_hash=m["text_hash"], status=m["status"],
                  created_at=m["created_at"], purge_at=m["purge_at"],
                  decided_at=m["decided_at"], decided_by=m["decided_by"],
                  comment=m["comment"], allowance_id=m["allowance_id"],
                  has_draft=m["sealed"] is not None)


def _rules(rules: list[str] | tuple[str, ...]) -> list[str]:
    if len(rules) > MAX_RULES or any(not isinstance(r, str) or not 0 < len(r) <= 64
                                     for r in rules):
        raise InvalidInput("rules", f"at most {MAX_RULES} rule ids")
    return list(dict.fromkeys(rules))


def submit(store: Store, key: ReviewKey, *, user: str, platform: str, text: str,
           note: str = "", rules: list[str] | tuple[str, ...] = (), account: str = "personal",
           retention_days: int = 7, now: datetime | None = None) -> Review:
    """Seal the draft and store a pending review (audited ``review-request`` with the
    text's hash, never the text). ``InvalidInput`` names the field."""
    now = aware(now)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text", "is required")
    if len(text) > MAX_TEXT:
        raise InvalidInput("text", f"is longer than {MAX_TEXT} characters")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput("note", f"is longer than {MAX_NOTE} characters")
    if account not in ("official", "personal"):
        raise InvalidInput("account", "must be official or personal")
    if not 1 <= retention_days <= 365:
        raise InvalidInput("retention_days", "must be 1–365")
    review = Review(
        id=new_id(), user=text_field(user, "user", max_len=128) or "",
        platform=text_field(platform, "platform", max_len=64) or "", account=account,
        rules=tuple(_rules(rules)), text_hash=text_hash(text), status=PENDING,
        created_at=now, purge_at=now + timedelta(days=retention_days), has_draft=True)
    sealed = key.seal(json.dumps({"text": text, "note": note}, ensure_ascii=False)
                      .encode("utf-8", "surrogatepass"), review.id)
    with store.write() as conn:
        conn.execute(sa.insert(reviews).values(
            id=review.id, user=review.user, platform=review.platform, account=account,
            rules=list(review.rules), text_hash=review.text_hash, sealed=sealed,
            key_id=key.id, status=PENDING, created_at=now, purge_at=review.purge_at))
        audit.append_in(conn, audit.Kind.review_request, at=now, actor=review.user,
                        user=review.user, platform=review.platform, request_id=review.id,
                        details={"rules": list(review.rules), "text_hash": review.text_hash,
                                 "account": account, "note_length": len(note)})
    return review


def get(store: Store, review_id: str) -> Review | None:
    with store.read() as conn:
        row = conn.execute(sa.select(reviews).where(reviews.c.id == review_id)).first()
    return _review(row) if row is not None else None


def draft(store: Store, key: ReviewKey, review_id: str) -> Draft | None:
    """The pending review's draft and note, opened; ``None`` once it is gone.
    ``ReviewKeyError`` when the key does not open it (another key, a row tampered with)."""
    with store.read() as conn:
        row = conn.execute(sa.select(reviews.c.sealed, reviews.c.key_id)
                           .where(reviews.c.id == review_id)).first()
    if row is None or row.sealed is None:
        return None
    if row.key_id != key.id:
        raise ReviewKeyError(f"review {review_id} was sealed with another review key "
                             f"({row.key_id})")
    data = json.loads(key.open(bytes(row.sealed), review_id).decode("utf-8", "surrogatepass"))
    return Draft(text=data["text"], note=data["note"])


def list_reviews(store: Store, *, status: str | None = None, user: str | None = None,
                 limit: int = 200) -> list[Review]:
    """Reviews, oldest first when pending (a queue), else newest first."""
    order = reviews.c.created_at.asc() if status == PENDING else reviews.c.created_at.desc()
    stmt = sa.select(reviews).order_by(order, reviews.c.id).limit(limit)
    if status is not None:
        stmt = stmt.where(reviews.c.status == status)
    if user is not None:
        stmt = stmt.where(reviews.c.user == user)
    with store.read() as conn:
        return [_review(r) for r in conn.execute(stmt)]


def _decide(conn: Connection, review_id: str, actor: str, values: dict[str, Any], *,
            own: bool) -> Review:
    row = conn.execute(sa.select(reviews).where(reviews.c.id == review_id)).first()
    if row is None:
        raise NotFound(f"no review {review_id!r}")
    if own and row.user != actor:
        raise NotFound(f"no review {review_id!r}")  # not the author's: as if absent
    if not own and row.user == actor:
        raise SelfDecision("nobody reviews their own draft")
    result = conn.execute(sa.update(reviews)
                          .where(reviews.c.id == review_id, reviews.c.status == PENDING)
                          .values(sealed=None, key_id=None, **values))
    if result.rowcount != 1:
        raise AlreadyDecided(f"request (review) {review_id}", row.status)
    return _review(conn.execute(sa.select(reviews).where(reviews.c.id == review_id)).one())


def approve(store: Store, review_id: str, reviewer: str, comment: str = "", *,
            minutes: int = 60, now: datetime | None = None) -> tuple[Review, Allowance]:
    """Approve a pending review and let exactly its text through once.

    Two transactions: the decision (the draft deleted with it; a race's loser gets
    ``AlreadyDecided``), then the allowance (``allowances.issue``, kind ``review``, which
    writes the ``review-approve`` audit entry with the review's id and the comment's
    length). Should the store fail between the two, the review stays approved without an
    allowance (``allowance_id`` NULL, no audit entry); the error propagates and the
    reviewer sees it."""
    now = aware(now)
    reviewer = text_field(reviewer, "reviewer", max_len=128) or ""
    said = text_field(comment, "comment", max_len=MAX_COMMENT, required=False)
    with store.write() as conn:
        review = _decide(conn, review_id, reviewer, {
            "status": APPROVED, "decided_at": now, "decided_by": reviewer, "comment": said},
            own=False)
    allowance = allowances.issue(
        store, user=review.user, platform=review.platform, text_hash=review.text_hash,
        kind="review", rules=list(review.rules), minutes=minutes, actor=reviewer,
        details={"review": review.id, "comment_length": len(said or "")}, now=now)
    with store.write() as conn:
        conn.execute(sa.update(reviews).where(reviews.c.id == review_id)
                     .values(allowance_id=allowance.id))
    return replace(review, allowance_id=allowance.id), allowance


def return_(store: Store, review_id: str, reviewer: str, comment: str, *,
            now: datetime | None = None) -> Review:
    """Return a pending review to its author with a comment (required); the draft goes."""
    now = aware(now)
    reviewer = text_field(reviewer, "reviewer", max_len=128) or ""
    said = text_field(comment, "comment", max_len=MAX_COMMENT) or ""
    with store.write() as conn:
        review = _decide(conn, review_id, reviewer, {
            "status": RETURNED, "decided_at": now, "decided_by": reviewer, "comment": said},
            own=False)
        audit.append_in(conn, audit.Kind.review_return, at=now, actor=reviewer,
                        user=review.user, platform=review.platform, request_id=review.id,
                        details={"rules": list(review.rules), "comment_length": len(said)})
    return review


def withdraw(store: Store, review_id: str, author: str, *,
             now: datetime | None = None) -> Review:
    """The author takes a pending review back; the draft goes."""
    now = aware(now)
    with store.write() as conn:
        review = _decide(conn, review_id, author, {
            "status": WITHDRAWN, "decided_at": now, "decided_by": author}, own=True)
        audit.append_in(conn, audit.Kind.review_withdraw, at=now, actor=author,
                        user=review.user, platform=review.platform, request_id=review.id,
                        details={"rules": list(review.rules)})
    return review


def purge(store: Store, *, now: datetime | None = None) -> tuple[int, int]:
    """Retention: pending reviews past ``purge_at`` expire (their drafts deleted, audited
    ``review-expire``); decided rows past it are deleted. Returns (expired, deleted)."""
    now = aware(now)
    with store.write() as conn:
        due = [_review(r) for r in conn.execute(
            sa.select(reviews).where(reviews.c.status == PENDING, reviews.c.purge_at <= now)
            .with_for_update())]
        if due:
            conn.execute(sa.update(reviews)
                         .where(reviews.c.id.in_([r.id for r in due]),
                                reviews.c.status == PENDING)
                         .values(status=EXPIRED, decided_at=now, sealed=None, key_id=None))
            for r in due:
                audit.append_in(conn, audit.Kind.review_expire, at=now, user=r.user,
                                platform=r.platform, request_id=r.id,
                                details={"rules": list(r.rules)})
        deleted = conn.execute(sa.delete(reviews).where(
            reviews.c.status != PENDING, reviews.c.purge_at <= now,
            reviews.c.id.not_in([r.id for r in due]) if due else sa.true())).rowcount
    return len(due), int(deleted or 0)

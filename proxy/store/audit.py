"""The audit log: append-only, hash-chained, verifiable, prunable.

Each entry carries ``prev_hash`` (the hash of the entry before it; 64 zeros for the first)
and ``hash`` = SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of
``{seq, at, kind, actor, user, platform, request_id, grant_id, details, prev_hash}``, with
``at`` in UTC ISO-8601 with microseconds and ``details`` the canonical JSON text stored.
Editing, deleting or reordering rows breaks the chain, and ``verify`` says where.

Appends are serialized: they lock the single ``audit_head`` row (``SELECT … FOR UPDATE`` on
PostgreSQL, the database lock of ``BEGIN IMMEDIATE`` on SQLite), so several processes and
service nodes can append to one chain. The head row also remembers the last seq and hash,
so deleting the newest entries is detected too.

Retention: ``prune(before)`` deletes the oldest entries and appends a ``checkpoint`` entry
that records the seq and hash of the last entry it deleted; ``verify`` then checks the
chain from there.

Never put draft or post text in ``details``: keys named ``text``, ``draft`` or ``body``
are refused.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from proxy.store.common import aware
from proxy.store.db import Store
from proxy.store.errors import InvalidInput
from proxy.store.schema import audit_head, audit_log, events

GENESIS = "0" * 64
"""``prev_hash`` of the very first entry."""

FORBIDDEN_DETAIL_KEYS = frozenset({"text", "draft", "body"})


class Kind(StrEnum):
    """What an entry records. Other parts may append any of these."""

    request = "request"
    approve = "approve"
    reject = "reject"
    revoke = "revoke"
    expire = "expire"
    lapse = "lapse"
    block = "block"
    warn = "warn"
    grant_use = "grant-use"  # a gateway allowed a request by a grant (proxy/gateway/sync.py)
    policy_reload = "policy-reload"
    login = "login"
    login_failed = "login-failed"
    logout = "logout"
    user_add = "user-add"
    user_remove = "user-remove"
    user_password = "user-password"  # noqa: S105 (a kind name, not a password)
    user_roles = "user-roles"
    checkpoint = "checkpoint"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    kind: str
    actor: str | None
    user: str | None
    platform: str | None
    request_id: str | None
    grant_id: str | None
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of ``verify``: the entry (seq) and what is wrong with it."""

    seq: int
    kind: str
    """``edited``, ``deleted``, ``reordered``, ``broken-link``, ``truncated`` or ``unexpected``."""
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    entries: int
    first_seq: int | None
    last_seq: int | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- hashing ------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(*, seq: int, at: datetime, kind: str, actor: str | None, user: str | None,
               platform: str | None, request_id: str | None, grant_id: str | None,
               details: str, prev_hash: str) -> str:
    """The hash of one entry (``details`` as its stored canonical JSON text)."""
    doc = {"seq": seq, "at": _iso(at), "kind": kind, "actor": actor, "user": user,
           "platform": platform, "request_id": request_id, "grant_id": grant_id,
           "details": details, "prev_hash": prev_hash}
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()


def _row_hash(row: Row[Any], seq: int | None = None) -> str:
    m = row._mapping
    return entry_hash(seq=m["seq"] if seq is None else seq, at=m["at"], kind=m["kind"],
                      actor=m["actor"], user=m["user"], platform=m["platform"],
                      request_id=m["request_id"], grant_id=m["grant_id"],
                      details=m["details"], prev_hash=m["prev_hash"])


def _check_details(value: Any, path: str = "details") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(path, "keys must be strings")
            if key.lower() in FORBIDDEN_DETAIL_KEYS:
                raise InvalidInput(f"{path}.{key}", "draft or post text is never recorded")
            _check_details(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_details(item, f"{path}[{i}]")


def _entry(row: Row[Any]) -> AuditEntry:
    m = row._mapping
    return AuditEntry(seq=int(m["seq"]), at=m["at"], kind=m["kind"], actor=m["actor"],
                      user=m["user"], platform=m["platform"], request_id=m["request_id"],
                      grant_id=m["grant_id"], details=json.loads(m["details"]),
                      prev_hash=m["prev_hash"], hash=m["hash"])


# --- appending ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry to append (``append_many_in``); seq and hashes are filled in then."""

    kind: Kind | str
    at: datetime | None = None
    actor: str | None = None
    user: str | None = None
    platform: str | None = None
    request_id: str | None = None
    grant_id: str | None = None
    details: Mapping[str, Any] | None = None


def lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the chain head for the rest of the caller's writing transaction; return it."""
    head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)
                        .where(audit_head.c.id == 1).with_for_update()).one()
    return int(head.seq), str(head.hash)


def append_many_in(conn: Connection, drafts: Iterable[Draft]) -> list[AuditEntry]:
    """Append entries in order inside the caller's writing transaction (one head lock,
    one multi-row insert). Validates every draft before writing any."""
    prepared = []
    for d in drafts:
        kind = Kind(d.kind)
        at = aware(d.at, "at").astimezone(UTC)
        body = dict(d.details or {})
        _check_details(body)
        try:
            details_text = _canonical(body)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("details", f"not JSON: {exc}") from None
        prepared.append((d, kind, at, body, details_text))
    if not prepared:
        return []
    seq, prev = lock_head(conn)
    rows: list[dict[str, Any]] = []
    entries: list[AuditEntry] = []
    for d, kind, at, body, details_text in prepared:
        seq += 1
        values: dict[str, Any] = {
            "seq": seq, "at": at, "kind": kind.value, "actor": d.actor, "user": d.user,
            "platform": d.platform, "request_id": d.request_id, "grant_id": d.grant_id,
            "details": details_text, "prev_hash": prev}
        digest = entry_hash(**values)
        rows.append({**values, "hash": digest})
        entries.append(AuditEntry(seq=seq, at=at, kind=kind.value, actor=d.actor,
                                  user=d.user, platform=d.platform, request_id=d.request_id,
                                  grant_id=d.grant_id, details=body, prev_hash=prev,
                                  hash=digest))
        prev = digest
    conn.execute(sa.insert(audit_log), rows)
    conn.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev))
    return entries


def append_in(conn: Connection, kind: Kind | str, *, at: datetime | None = None,
              actor: str | None = None, user: str | None = None, platform: str | None = None,
              request_id: str | None = None, grant_id: str | None = None,
              details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Append inside the caller's writing transaction (``store.write()``).

    The store's own request/grant/user functions call this so that a change and its
    record commit together.
    """
    draft = Draft(kind, at, actor, user, platform, request_id, grant_id, details)
    return append_many_in(conn, [draft])[0]


def append(store: Store, kind: Kind | str, *, at: datetime | None = None,
           actor: str | None = None, user: str | None = None, platform: str | None = None,
           request_id: str | None = None, grant_id: str | None = None,
           details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Append one entry (its own transaction). ``at`` defaults to now (UTC)."""
    with store.write() as conn:
        return append_in(conn, kind, at=at, actor=actor, user=user, platform=platform,
                         request_id=request_id, grant_id=grant_id, details=details)


# --- reading ------------------------------------------------------------------------------


def _filtered(kind: str | Collection[str] | None, actor: str | None, user: str | None,
              platform: str | None, since: datetime | None, until: datetime | None
              ) -> sa.Select[Any]:
    query = sa.select(audit_log)
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        query = query.where(audit_log.c.kind.in_(kinds))
    if actor is not None:
        query = query.where(audit_log.c.actor == actor)
    if user is not None:
        query = query.where(audit_log.c.user == user)
    if platform is not None:
        query = query.where(audit_log.c.platform == platform)
    if since is not None:
        query = query.where(audit_log.c.at >= aware(since, "since"))
    if until is not None:
        query = query.where(audit_log.c.at < aware(until, "until"))
    return query


def query(store: Store, *, kind: str | Collection[str] | None = None,
          actor: str | None = None, user: str | None = None, platform: str | None = None,
          since: datetime | None = None, until: datetime | None = None,
          limit: int = 100, offset: int = 0, newest_first: bool = True) -> list[AuditEntry]:
    """Entries matching every filter given (``since`` inclusive, ``until`` exclusive)."""
    if limit < 0 or offset < 0:
        raise InvalidInput("limit" if limit < 0 else "offset", "must not be negative")
    order = audit_log.c.seq.desc() if newest_first else audit_log.c.seq.asc()
    stmt = (_filtered(kind, actor, user, platform, since, until)
            .order_by(order).limit(limit).offset(offset))
    with store.read() as conn:
        return [_entry(row) for row in conn.execute(stmt)]


def count(store: Store, *, kind: str | Collection[str] | None = None,
          actor: str | None = None, user: str | None = None, platform: str | None = None,
          since: datetime | None = None, until: datetime | None = None) -> int:
    """How many entries match (for paging)."""
    inner = _filtered(kind, actor, user, platform, since, until).subquery()
    with store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


def head(store: Store) -> tuple[int, str]:
    """The chain head: last seq and its hash (worth writing down elsewhere as an anchor)."""
    with store.read() as conn:
        row = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)
                           .where(audit_head.c.id == 1)).one()
        return int(row.seq), str(row.hash)


CSV_COLUMNS = ("seq", "at", "kind", "actor", "user", "platform", "request_id", "grant_id",
               "details", "prev_hash", "hash")


def _cell(value: str | None) -> str:
    # A cell starting with = + - @ is a formula to spreadsheet programs: quote it.
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(entries: Iterable[AuditEntry], out: TextIO) -> int:
    """Write entries as CSV (header first); return how many were written."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for e in entries:
        writer.writerow([e.seq, _iso(e.at), e.kind, _cell(e.actor), _cell(e.user),
                         _cell(e.platform), e.request_id or "", e.grant_id or "",
                         _canonical(dict(e.details)), e.prev_hash, e.hash])
        n += 1
    return n


def export_csv(store: Store, out: TextIO, *, kind: str | Collection[str] | None = None,
               actor: str | None = None, user: str | None = None,
               platform: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> int:
    """Every matching entry, oldest first, as CSV (streamed in one read transaction)."""
    stmt = _filtered(kind, actor, user, platform, since, until).order_by(audit_log.c.seq)
    with store.read() as conn:
        rows = conn.execution_options(yield_per=1000).execute(stmt)
        return write_csv((_entry(r) for r in rows), out)


# --- verifying ----------------------------------------------------------------------------

_MAX_SUSPECTS = 1000
"""Edited rows examined for moves; beyond this the rest are reported as edited."""


def _anchor(conn: Connection) -> tuple[int, str, int | None]:
    """Where the chain starts: (first seq, its prev_hash, seq of the checkpoint used)."""
    row = conn.execute(sa.select(audit_log.c.seq, audit_log.c.details)
                       .where(audit_log.c.kind == Kind.checkpoint.value)
                       .order_by(audit_log.c.seq.desc()).limit(1)).first()
    if row is None:
        return 1, GENESIS, None
    try:
        details = json.loads(row.details)
        return int(details["pruned_through"]) + 1, str(details["pruned_hash"]), int(row.seq)
    except (ValueError, KeyError, TypeError):
        return 1, GENESIS, int(row.seq)


def verify(store: Store) -> VerifyReport:
    """Check the whole chain; every problem names the entry (seq) and what is wrong.

    Detects: changed entries (``edited``), missing ones (``deleted``; also the newest ones,
    against the chain head: ``truncated``), entries moved to another position
    (``reordered``), and entries whose link to the one before is broken (an entry changed
    and its hash recomputed: ``broken-link``).
    """
    problems: list[Problem] = []
    suspects: dict[int, Row[Any]] = {}
    links: list[tuple[int, str]] = []
    with store.read() as conn:
        head_row = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)
                                .where(audit_head.c.id == 1)).one()
        expected_seq, last_hash, checkpoint = _anchor(conn)
        first_seq: int | None = None
        last_seq: int | None = None
        n = 0
        rows = conn.execution_options(yield_per=1000).execute(
            sa.select(audit_log).order_by(audit_log.c.seq))
        for row in rows:
            seq = int(row.seq)
            n += 1
            if first_seq is None:
                first_seq = seq
            if seq < expected_seq:
                problems.append(Problem(seq, "unexpected",
                                        f"present although checkpoint {checkpoint} says "
                                        f"entries up to {expected_seq - 1} were pruned"))
            elif seq > expected_seq:
                missing = (f"entry {expected_seq} is" if seq == expected_seq + 1
                           else f"entries {expected_seq}–{seq - 1} are")
                problems.append(Problem(expected_seq, "deleted", f"{missing} missing"))
            elif row.prev_hash != last_hash:
                links.append((seq, row.prev_hash))
            if _row_hash(row) != row.hash:
                if len(suspects) < _MAX_SUSPECTS:
                    suspects[seq] = row
                else:
                    problems.append(Problem(seq, "edited", "contents changed (hash mismatch)"))
            last_hash, expected_seq, last_seq = row.hash, seq + 1, seq
    moved_hashes: set[str] = set()
    for seq, row in suspects.items():
        origin = next((s for s in suspects if s != seq and _row_hash(row, s) == row.hash), None)
        if origin is not None:
            moved_hashes.add(row.hash)
            problems.append(Problem(seq, "reordered", f"entry {origin} was moved here"))
        else:
            problems.append(Problem(seq, "edited", "contents changed (hash mismatch)"))
    moved = {s for s, r in suspects.items() if r.hash in moved_hashes}
    for seq, prev in links:
        if seq in moved or prev in moved_hashes or (seq - 1) in moved:
            continue
        problems.append(Problem(seq, "broken-link",
                                f"does not link to entry {seq - 1}: one of the two was "
                                "changed and its hash recomputed"))
    if last_seq is None:
        if int(head_row.seq) >= expected_seq:
            problems.append(Problem(expected_seq, "truncated",
                                    f"the log is empty but the chain head is at seq "
                                    f"{head_row.seq}"))
    elif int(head_row.seq) > last_seq:
        problems.append(Problem(last_seq + 1, "truncated",
                                f"entries {last_seq + 1}–{head_row.seq} are missing "
                                "(the chain head is further on)"))
    elif int(head_row.seq) != last_seq or head_row.hash != last_hash:
        problems.append(Problem(last_seq, "broken-link",
                                f"the chain head (seq {head_row.seq}) does not match the last "
                                "entry"))
    problems.sort(key=lambda p: p.seq)
    return VerifyReport(entries=n, first_seq=first_seq, last_seq=last_seq, problems=problems)


# --- retention ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PruneResult:
    pruned: int
    """Entries deleted."""
    through_seq: int
    """The last deleted entry."""
    checkpoint: AuditEntry


def prune(store: Store, before: datetime, *, actor: str | None = None,
          now: datetime | None = None) -> PruneResult | None:
    """Delete the oldest entries, up to the first one at or after ``before``; append a
    ``checkpoint`` entry naming the last deleted entry's seq and hash. ``None`` when there
    is nothing to prune. Recorded gateway event ids older than ``before`` go too.
    """
    before = aware(before, "before")
    with store.write() as conn:
        head_row = conn.execute(sa.select(audit_head.c.seq).where(audit_head.c.id == 1)
                                .with_for_update()).one()
        keep_from = conn.execute(sa.select(sa.func.min(audit_log.c.seq))
                                 .where(audit_log.c.at >= before)).scalar()
        through = int(head_row.seq) if keep_from is None else int(keep_from) - 1
        last = conn.execute(sa.select(audit_log.c.seq, audit_log.c.hash)
                            .where(audit_log.c.seq <= through)
                            .order_by(audit_log.c.seq.desc()).limit(1)).first()
        if last is None:
            return None
        deleted = conn.execute(sa.delete(audit_log).where(audit_log.c.seq <= through)).rowcount
        conn.execute(sa.delete(events).where(events.c.received_at < before))
        entry = append_in(conn, Kind.checkpoint, at=now, actor=actor,
                          details={"pruned_through": int(last.seq), "pruned_hash": last.hash,
                                   "pruned_count": deleted, "before": _iso(before)})
        return PruneResult(pruned=deleted, through_seq=int(last.seq), checkpoint=entry)

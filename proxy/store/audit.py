"""The audit log: append-only, chained with a key kept outside the database, prunable.

Each entry carries ``prev_hash`` (the link of the entry before it; 64 zeros for the first),
``key_id`` and ``hash`` = HMAC-SHA256, under the audit key ``key_id`` names
(``auditkeys.py``), of the canonical JSON (sorted keys, no spaces, UTF-8) of
``{seq, at, kind, actor, user, platform, request_id, grant_id, details, prev_hash,
key_id}``, with ``at`` in UTC ISO-8601 with microseconds and ``details`` the canonical JSON
text stored. Editing, deleting or reordering rows breaks the chain, and recomputing the
links needs the key, which the database does not hold; ``auditverify.verify`` says where.

Entries written before the chain was keyed (schema 0001) have no ``key_id``; their
``hash`` is plain SHA-256 of the same document without ``key_id`` (``entry_hash``). The
upgrade records the last of them in ``audit_head.legacy_through``; an unkeyed entry after
it is reported. The first keyed entry's HMAC covers the last unkeyed entry's hash, so the
older part cannot be rewritten either without the key (see docs/storage.md).

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
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from proxy.store.auditkeys import KeyRing
from proxy.store.common import aware
from proxy.store.db import Store, keys_of
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
    # Coaching (issue 16; docs/rules.md): never the post's text, only its hash.
    post_override = "post-override"  # way, reason, rules, text_hash
    false_positive = "false-positive"  # rules, text_hash
    post_simulated = "post-simulated"  # rules, severity, would: block|warn
    allowance_use = "allowance-use"
    review_request = "review-request"
    review_approve = "review-approve"
    review_return = "review-return"  # comment length only


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
    key_id: str | None = None


# --- hashing ------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _document(*, seq: int, at: datetime, kind: str, actor: str | None, user: str | None,
              platform: str | None, request_id: str | None, grant_id: str | None,
              details: str, prev_hash: str) -> dict[str, Any]:
    return {"seq": seq, "at": _iso(at), "kind": kind, "actor": actor, "user": user,
            "platform": platform, "request_id": request_id, "grant_id": grant_id,
            "details": details, "prev_hash": prev_hash}


def entry_hash(**fields: Any) -> str:
    """The unkeyed (schema 0001) hash of one entry: plain SHA-256, which anyone can
    recompute. Kept to verify entries written before the chain was keyed."""
    return hashlib.sha256(_canonical(_document(**fields)).encode()).hexdigest()


def entry_link(keys: KeyRing, kid: str, **fields: Any) -> str:
    """The keyed link of one entry: HMAC-SHA256 under key ``kid`` (``KeyError`` if the
    ring does not hold it)."""
    doc = {**_document(**fields), "key_id": kid}
    return keys.mac(kid, _canonical(doc).encode())


def row_hash(row: Row[Any], keys: KeyRing, seq: int | None = None) -> str | None:
    """What a stored row's ``hash`` should be (at ``seq`` if given); ``None`` when its key
    is not in the ring."""
    m = row._mapping
    fields = {"seq": m["seq"] if seq is None else seq, "at": m["at"], "kind": m["kind"],
              "actor": m["actor"], "user": m["user"], "platform": m["platform"],
              "request_id": m["request_id"], "grant_id": m["grant_id"],
              "details": m["details"], "prev_hash": m["prev_hash"]}
    kid = m["key_id"]
    if kid is None:
        return entry_hash(**fields)
    if kid not in keys.keys:
        return None
    return entry_link(keys, kid, **fields)


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
                      prev_hash=m["prev_hash"], hash=m["hash"], key_id=m["key_id"])


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
    keys = keys_of(conn)
    kid = keys.current
    seq, prev = lock_head(conn)
    rows: list[dict[str, Any]] = []
    entries: list[AuditEntry] = []
    for d, kind, at, body, details_text in prepared:
        seq += 1
        values: dict[str, Any] = {
            "seq": seq, "at": at, "kind": kind.value, "actor": d.actor, "user": d.user,
            "platform": d.platform, "request_id": d.request_id, "grant_id": d.grant_id,
            "details": details_text, "prev_hash": prev}
        digest = entry_link(keys, kid, **values)
        rows.append({**values, "key_id": kid, "hash": digest})
        entries.append(AuditEntry(seq=seq, at=at, kind=kind.value, actor=d.actor,
                                  user=d.user, platform=d.platform, request_id=d.request_id,
                                  grant_id=d.grant_id, details=body, prev_hash=prev,
                                  hash=digest, key_id=kid))
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


def record_failed_login(store: Store, user: str, address: str, via: str, count: int, *,
                        at: datetime | None = None) -> AuditEntry:
    """Record one failed login (never the password): who was tried (cut to 128
    characters), from which client address, through what (``service`` form, ``api``
    Basic, ``proxy`` at a gateway) and how many failures that name and address have had in
    the limiter's window. For every part that checks passwords."""
    return append(store, Kind.login_failed, at=at, user=user[:128] or None,
                  details={"address": address[:64], "via": via, "count": count})


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

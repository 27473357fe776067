"""Verifying the audit chain, and anchoring its head outside the database.

``verify`` recomputes every entry's keyed link (``audit.row_hash``) and checks the links,
the chain head and the anchors. An **anchor** is one JSON line
``{"seq", "hash", "at", "legacy_through", "key_id", "mac"}`` appended to a file outside the
database (``Settings.audit_anchor_file``; make it append-only, ``chattr +a``, or ship it to
a log host): the head of the chain at that moment, with an HMAC under the audit key.
``sargs audit anchor`` writes one and the service writes one every
``Settings.audit_anchor_minutes``. ``verify`` checks every anchor line: its HMAC, and that
the entry it names still has the hash it recorded (entries pruned since are skipped).

What this proves, and what it cannot: see docs/storage.md ("What the audit chain proves").
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from proxy.store.audit import GENESIS, Kind, _canonical, row_hash
from proxy.store.auditkeys import KeyRing
from proxy.store.db import Store
from proxy.store.schema import audit_head, audit_log

log = logging.getLogger("sargs.audit.anchor")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of ``verify``: the entry (seq) and what is wrong with it."""

    seq: int
    kind: str
    """``edited``, ``deleted``, ``reordered``, ``broken-link``, ``truncated``,
    ``unexpected``, ``unkeyed``, ``unknown-key``, ``anchor-mismatch`` or ``anchor-forged``."""
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    entries: int
    first_seq: int | None
    last_seq: int | None
    problems: list[Problem] = field(default_factory=list)
    anchors: int = 0
    """Anchor lines checked."""
    legacy_through: int = 0
    """Entries up to this seq were written before the chain was keyed."""

    @property
    def ok(self) -> bool:
        return not self.problems



# --- anchors ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    at: str
    legacy_through: int
    key_id: str

    def signed(self) -> bytes:
        return _canonical({"seq": self.seq, "hash": self.hash, "at": self.at,
                           "legacy_through": self.legacy_through,
                           "key_id": self.key_id}).encode()


def anchor(store: Store, path: Path, now: datetime | None = None) -> Anchor:
    """Append the chain's head, signed, to ``path`` (and log it); return it."""
    keys = store.audit_keys
    with store.read() as conn:
        row = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash,
                                     audit_head.c.legacy_through)
                           .where(audit_head.c.id == 1)).one()
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    found = Anchor(int(row.seq), str(row.hash), at, int(row.legacy_through), keys.current)
    line = json.dumps({**json.loads(found.signed()),
                       "mac": keys.mac(keys.current, found.signed())}, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())
    log.info("audit anchor", extra={"anchor": json.loads(line)})
    return found


def read_anchors(path: Path, keys: KeyRing) -> tuple[list[Anchor], list[Problem]]:
    """The anchors in ``path`` whose HMAC is right, and a problem for every other line."""
    if not path.exists():
        return [], []
    found: list[Anchor] = []
    problems: list[Problem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            item = Anchor(int(data["seq"]), str(data["hash"]), str(data["at"]),
                          int(data["legacy_through"]), str(data["key_id"]))
            mac = str(data["mac"])
        except (ValueError, KeyError, TypeError):
            problems.append(Problem(0, "anchor-forged", f"{path}:{number}: not an anchor line"))
            continue
        if item.key_id not in keys.keys:
            problems.append(Problem(item.seq, "unknown-key",
                                    f"{path}:{number}: anchor signed with audit key "
                                    f"{item.key_id}, which the key ring does not hold"))
        elif keys.mac(item.key_id, item.signed()) != mac:
            problems.append(Problem(item.seq, "anchor-forged",
                                    f"{path}:{number}: the anchor's HMAC is wrong"))
        else:
            found.append(item)
    return found, problems


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


def verify(store: Store, anchor_file: Path | None = None) -> VerifyReport:
    """Check the whole chain against the audit keys, and against every anchor in
    ``anchor_file`` (if given and present); every problem names the entry (seq) and what is
    wrong, the first entry that differs first.

    Detects: changed entries (``edited``: its HMAC does not match, which is also what an
    entry rewritten and re-hashed without the key looks like), missing ones (``deleted``;
    also the newest ones, against the chain head and the anchors: ``truncated``), entries
    moved to another position (``reordered``), entries whose link to the one before is
    broken (``broken-link``), entries without a key after the chain was keyed
    (``unkeyed``), entries under a key the ring does not hold (``unknown-key``), and
    entries that differ from what an anchor recorded (``anchor-mismatch``).
    """
    keys = store.audit_keys
    anchors, anchor_problems = read_anchors(anchor_file, keys) if anchor_file else ([], [])
    problems: list[Problem] = []
    suspects: dict[int, Row[Any]] = {}
    links: list[tuple[int, str]] = []
    with store.read() as conn:
        head_row = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash,
                                          audit_head.c.legacy_through)
                                .where(audit_head.c.id == 1)).one()
        # An anchor signed the boundary: the database's own value may have been raised.
        legacy = min([int(head_row.legacy_through), *(a.legacy_through for a in anchors)])
        anchored = {a.seq: a for a in anchors}
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
            if row.key_id is None and seq > legacy:
                problems.append(Problem(seq, "unkeyed",
                                        f"has no key although the chain is keyed after "
                                        f"entry {legacy} (rewritten without the key?)"))
            expected = row_hash(row, keys)
            if expected is None:
                problems.append(Problem(seq, "unknown-key",
                                        f"made under audit key {row.key_id}, which the key "
                                        "ring does not hold"))
            elif expected != row.hash:
                if len(suspects) < _MAX_SUSPECTS:
                    suspects[seq] = row
                else:
                    problems.append(Problem(seq, "edited", "contents changed (hash mismatch)"))
            anchor = anchored.pop(seq, None)
            if anchor is not None and anchor.hash != row.hash:
                problems.append(Problem(seq, "anchor-mismatch",
                                        f"differs from the anchor of {anchor.at} (the chain "
                                        "was rewritten after it)"))
            last_hash, expected_seq, last_seq = row.hash, seq + 1, seq
    moved_hashes: set[str] = set()
    for seq, row in suspects.items():
        origin = next((s for s in suspects
                       if s != seq and row_hash(row, keys, s) == row.hash), None)
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
    for anchor in anchored.values():  # anchored entries not found
        if anchor.seq >= expected_seq:
            problems.append(Problem(anchor.seq, "truncated",
                                    f"the anchor of {anchor.at} records entry {anchor.seq}, "
                                    "which is missing"))
    problems.extend(anchor_problems)
    problems.sort(key=lambda p: (p.seq, p.kind.startswith("anchor")))
    return VerifyReport(entries=n, first_seq=first_seq, last_seq=last_seq, problems=problems,
                        anchors=len(anchors), legacy_through=legacy)



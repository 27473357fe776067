"""``sargs audit …``: verify, anchor, read, export and prune the audit log; rotate its key.

Times given on the command line are ISO-8601 (``2026-11-01`` or ``2026-11-01T08:00+02:00``);
without a time zone they are UTC.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from proxy.settings import Settings
from proxy.store import StoreError, audit, auditkeys, auditverify
from proxy.store.auditkeys import AuditKeyError
from proxy.store.db import Store, open_configured


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date or time (e.g. 2026-11-01)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", action="append", metavar="KIND",
                        choices=[k.value for k in audit.Kind],
                        help="only entries of this kind (repeat for several)")
    parser.add_argument("--user", help="only entries about this user")
    parser.add_argument("--actor", help="only entries by this actor")
    parser.add_argument("--platform", help="only entries about this platform")
    parser.add_argument("--since", type=_when, help="from this time (inclusive)")
    parser.add_argument("--until", type=_when, help="up to this time (exclusive)")


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="verify, anchor, list, export and prune the audit "
                                          "log; rotate its key")
    cmds = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = cmds.add_parser("verify", help="check the keyed chain and every anchor; name "
                                            "every entry that differs, the first one first")
    verify.add_argument("--anchors", metavar="FILE", type=Path,
                        help="anchor file to check against (default: AUDIT_ANCHOR_FILE)")
    verify.set_defaults(handler=_verify)

    anchor = cmds.add_parser("anchor", help="append the signed chain head (seq, hash, time, "
                                            "HMAC) to the anchor file")
    anchor.add_argument("--anchors", metavar="FILE", type=Path,
                        help="append here (default: AUDIT_ANCHOR_FILE)")
    anchor.set_defaults(handler=_anchor)

    rotate = cmds.add_parser("rotate-key", help="add a new audit key to the key file; new "
                                                "entries use it, old keys stay for verifying")
    rotate.set_defaults(handler=_rotate)

    lst = cmds.add_parser("list", help="show entries, newest first")
    _filters(lst)
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lst.add_argument("--offset", type=int, default=0, help="skip this many")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(handler=_list)

    export = cmds.add_parser("export", help="write entries, oldest first, as CSV")
    _filters(export)
    export.add_argument("--csv", action="store_true", default=True,
                        help="CSV with a header row (the default and only format)")
    export.add_argument("--output", "-o", metavar="FILE", help="write here, not to stdout")
    export.set_defaults(handler=_export)

    prune = cmds.add_parser("prune", help="delete old entries, leaving a checkpoint entry")
    when = prune.add_mutually_exclusive_group(required=True)
    when.add_argument("--before", type=_when, help="delete entries older than this")
    when.add_argument("--days", type=int, help="keep this many days")
    prune.set_defaults(handler=_prune)


def _store() -> Store:
    return open_configured(Settings())


def _verify(args: argparse.Namespace) -> int:
    anchors = args.anchors or Settings().audit_anchors_path
    try:
        with _store() as store:
            report = auditverify.verify(store, anchors)
    except AuditKeyError as exc:
        print(f"sargs audit: {exc}", file=sys.stderr)
        return 1
    if report.ok:
        since = "" if report.first_seq in (None, 1) else f" (from seq {report.first_seq})"
        legacy = (f"; entries up to {report.legacy_through} predate the keyed chain"
                  if report.legacy_through else "")
        against = (f"{report.anchors} anchor(s) in {anchors} match" if report.anchors
                   else f"no anchor in {anchors} yet: run `sargs audit anchor`")
        print(f"ok: {report.entries} entries, chain intact{since}{legacy}; {against}")
        return 0
    for problem in report.problems:
        print(problem)
    print(f"FAILED: {len(report.problems)} problem(s) in {report.entries} entries",
          file=sys.stderr)
    return 1


def _anchor(args: argparse.Namespace) -> int:
    anchors = args.anchors or Settings().audit_anchors_path
    with _store() as store:
        found = auditverify.anchor(store, anchors)
    print(f"anchored seq {found.seq} ({found.hash[:16]}…) at {found.at} in {anchors}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    del args
    path = Settings().audit_keys_path
    kid = auditkeys.rotate(path)
    print(f"new audit key {kid} appended to {path}; new entries use it (restart the service "
          "nodes, and copy the file to each of them)")
    return 0


def _query_args(args: argparse.Namespace) -> dict[str, Any]:
    return {"kind": args.kind, "user": args.user, "actor": args.actor,
            "platform": args.platform, "since": args.since, "until": args.until}


def _list(args: argparse.Namespace) -> int:
    with _store() as store:
        try:
            entries = audit.query(store, limit=args.limit, offset=args.offset,
                                  **_query_args(args))
        except StoreError as exc:
            print(f"sargs audit: {exc}", file=sys.stderr)
            return 1
    for e in entries:
        if args.json:
            print(json.dumps({"seq": e.seq, "at": e.at.isoformat(), "kind": e.kind,
                              "actor": e.actor, "user": e.user, "platform": e.platform,
                              "request_id": e.request_id, "grant_id": e.grant_id,
                              "details": e.details, "hash": e.hash}, ensure_ascii=False))
            continue
        details = " ".join(f"{k}={v}" for k, v in sorted(e.details.items()) if v is not None)
        fields = [str(e.seq), e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind,
                  f"by={e.actor}" if e.actor else "", f"user={e.user}" if e.user else "",
                  f"platform={e.platform}" if e.platform else "",
                  f"request={e.request_id}" if e.request_id else "",
                  f"grant={e.grant_id}" if e.grant_id else "", details]
        print("  ".join(f for f in fields if f))
    return 0


def _export(args: argparse.Namespace) -> int:
    with _store() as store:
        if args.output:
            with open(args.output, "w", newline="", encoding="utf-8") as out:
                n = audit.export_csv(store, out, **_query_args(args))
            print(f"wrote {n} entries to {args.output}", file=sys.stderr)
        else:
            audit.export_csv(store, sys.stdout, **_query_args(args))
    return 0


def _prune(args: argparse.Namespace) -> int:
    if args.days is not None and args.days < 1:
        print("sargs audit: --days must be at least 1", file=sys.stderr)
        return 2
    before = args.before or datetime.now(UTC) - timedelta(days=args.days)
    with _store() as store:
        result = audit.prune(store, before, actor="cli")
    if result is None:
        print(f"nothing older than {before.isoformat()}")
    else:
        print(f"pruned {result.pruned} entries (through seq {result.through_seq}); "
              f"checkpoint at seq {result.checkpoint.seq}")
    return 0

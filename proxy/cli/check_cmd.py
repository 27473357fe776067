"""``sargs check``: check a draft read from standard input; JSON on standard output.

The contract (DESIGN.md): exits 0 and prints ``{"verdict", "policy", "findings"}`` with
UTF-16 offsets, whatever the verdict. A broken policy prints its problems (file:line) on
standard error and exits 1; bad options exit 2.

For people and CI: ``--format text`` prints the draft with each finding marked
(``⟦…⟧1``), hidden format and control characters shown as ``⟨U+200B⟩`` (a draft cannot
hide text or drive the terminal), and the findings listed below; ``--fail-on warn|block``
exits 1 when the verdict is at least that severity.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from proxy.cli.loading import load_or_exit
from proxy.compliance.config import Severity
from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest, CheckResult
from proxy.i18n import Translator


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "check",
        help="check a draft (standard input) against the compliance rules; prints JSON",
        description="Read a draft from standard input and print the findings as JSON "
        "(start/end are UTF-16 code units, as in JavaScript), or as the marked draft "
        "(--format text). Exits 0 whatever the verdict unless --fail-on is given.",
    )
    parser.add_argument("--policy", metavar="DIR", help="policy directory "
                        "(default: the configured one, as ./scripts/run uses)")
    parser.add_argument("--account", choices=("official", "personal"), default="personal",
                        help="account the draft is posted from (default: personal)")
    parser.add_argument("--platform", metavar="ID", help="platform id from the policy catalog")
    parser.add_argument("--at", metavar="ISO-8601", help="evaluate as of this time "
                        "(without an offset: the institution's time zone; default: now)")
    parser.add_argument("--attach", action="append", choices=("image", "video", "file"),
                        default=[], help="an attachment of this kind (repeatable)")
    parser.add_argument("--lang", choices=("en", "lv", "sv", "sq"), default="en",
                        help="language of the messages (default: en)")
    parser.add_argument("--official-allowed", choices=("yes", "no"),
                        help="whether the author may post as the official account "
                        "(default: unknown, no official-account finding)")
    parser.add_argument("--format", choices=("json", "text"), default="json",
                        help="json (default, the API's shape) or text: the draft with the "
                        "findings marked, for people")
    parser.add_argument("--fail-on", choices=("warn", "block"),
                        help="exit 1 when the verdict is at least this severity "
                        "(default: exit 0 whatever the verdict)")
    parser.set_defaults(handler=_check)


def _fail(message: str) -> int:
    print(f"sargs check: {message}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> int:
    loaded = load_or_exit(args.policy)
    policy = loaded.policy
    if args.platform and args.platform not in policy.platforms:
        return _fail(f"--platform: unknown platform {args.platform!r} "
                     f"(known: {', '.join(sorted(policy.platforms))})")
    fields: dict[str, Any] = {
        "account": args.account,
        "platform": args.platform,
        "attachments": [{"kind": kind} for kind in args.attach],
        "lang": args.lang,
    }
    if args.official_allowed:
        fields["official_allowed"] = args.official_allowed == "yes"
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            return _fail(f"--at: {args.at!r} is not an ISO-8601 time (2026-11-23T10:00+02:00)")
        if at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo(policy.institution.timezone))
        fields["at"] = at
    text = sys.stdin.read()
    try:
        request = CheckRequest(text=text, **fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "input"
        return _fail(f"{field}: {error['msg']}")
    result = Engine.from_policy(policy).check(request, loaded.version)
    if args.format == "text":
        print(marked(text, result, args.lang))
    else:
        json.dump(result.model_dump(mode="json"), sys.stdout, ensure_ascii=False, indent=2)
        print()
    if args.fail_on and result.verdict != "ok":
        return 1 if Severity(result.verdict).rank >= Severity(args.fail_on).rank else 0
    return 0


_HIDDEN = {"Cf", "Cc", "Zl", "Zp", "Co", "Cs", "Cn"}


def _visible(text: str) -> str:
    """``text`` with what a reader cannot see spelled out: format characters (ZWSP, soft
    hyphen, bidi overrides), control characters (a draft's ESC sequences must not drive
    the terminal), separators and unassigned code points. Newlines and tabs stay."""
    return "".join(
        f"⟨U+{ord(c):04X}⟩" if c not in "\n\t" and unicodedata.category(c) in _HIDDEN else c
        for c in text
    )


def _code_points(text: str) -> list[int]:
    """Code point index of every UTF-16 offset of ``text`` (and of its end)."""
    out = []
    for i, c in enumerate(text):
        out += [i] * (2 if ord(c) > 0xFFFF else 1)
    return [*out, len(text)]


def marked(text: str, result: CheckResult, lang: str = "en") -> str:
    """The verdict, the draft with each finding marked ``⟦…⟧n``, and the numbered list."""
    t = Translator("check", lang)
    index = _code_points(text)
    spans = [(n, index[f.start], index[f.end]) for n, f in enumerate(result.findings, 1)
             if f.end > f.start]
    # Marks at the same place: closing ones first, then the longer span opens first.
    marks = sorted([(end, 0, -start, f"⟧{n}") for n, start, end in spans]
                   + [(start, 1, -end, "⟦") for n, start, end in spans])
    out, done = [], 0
    for at, _, _, mark in marks:
        out += [_visible(text[done:at]), mark]
        done = at
    out.append(_visible(text[done:]))
    lines = [t("verdict", verdict=result.verdict, policy=result.policy), "", "".join(out), ""]
    for n, f in enumerate(result.findings, 1):
        where = (f"{f.start}-{f.end} {_visible(text[index[f.start]:index[f.end]])!r}"
                 if f.end > f.start else t("whole_draft"))
        lines.append(f"{n}. {f.rule} ({f.severity.value}) {where}: {f.message}")
        if f.guideline:
            lines.append(f"   {f.guideline}")
    if not result.findings:
        lines.append(t("no_findings"))
    return "\n".join(lines)

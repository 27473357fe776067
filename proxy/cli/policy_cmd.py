"""``sargs policy …``: validate a policy, show its role × platform matrix, export its schema."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from proxy.cli import policy_test_cmd
from proxy.cli.loading import load_or_exit
from proxy.policy.decide import AccessPolicy
from proxy.policy.model import Action, Policy


def register(sub: Any) -> None:
    parser = sub.add_parser("policy", help="validate, inspect and test policies")
    cmds = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    check = cmds.add_parser("check", help="validate a policy directory (errors name file:line)")
    check.add_argument("dir", nargs="?", help="policy directory (default: the configured one)")
    check.set_defaults(handler=_check)

    matrix = cmds.add_parser("matrix", help="show the effective role × platform access table")
    matrix.add_argument("dir", nargs="?", help="policy directory (default: the configured one)")
    matrix.add_argument("--at", help="evaluate time windows at this ISO-8601 time")
    matrix.add_argument("--json", action="store_true", help="print JSON instead of a table")
    matrix.set_defaults(handler=_matrix)

    schema = cmds.add_parser(
        "schema", help="print the JSON Schema of policy files (for editors; a copy is in "
        "policies/policy.schema.json)")
    schema.set_defaults(handler=_schema)

    policy_test_cmd.register(cmds)


def _check(args: argparse.Namespace) -> int:
    loaded = load_or_exit(args.dir)
    policy = loaded.policy
    print(
        f"ok: {policy.name} {loaded.version}: {len(policy.platforms)} platforms, "
        f"{len(policy.roles)} roles, {len(loaded.files)} files"
    )
    return 0


_MARK = {Action.allow: "allow", Action.read: "read", Action.block: "block"}


def _cell(policy: Policy, access: AccessPolicy, role: str, platform: str,
          at: datetime | None) -> str:
    if any(d.platform == platform for d in policy.deny):
        return "DENY"
    rule = policy.roles[role].platforms.get(platform)
    if at is not None:
        action, _, media = access.level(role, platform, at)
        text = _MARK[action]
    elif rule is not None and rule.windows:
        text = f"{_MARK[rule.action]}*/{_MARK[rule.otherwise]}"
        media = rule.media if rule.media is not None else not policy.roles[role].block_media
    else:
        action = rule.action if rule else policy.roles[role].default
        text = _MARK[action]
        media = (rule.media if rule and rule.media is not None
                 else not policy.roles[role].block_media)
    if not media and not text.startswith("block"):
        text += " -m"
    return text


def _matrix(args: argparse.Namespace) -> int:
    loaded = load_or_exit(args.dir)
    policy = loaded.policy
    access = AccessPolicy(policy)
    at = datetime.fromisoformat(args.at) if args.at else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=access.tz)
    roles, platforms = list(policy.roles), list(policy.platforms)
    cells = {r: {p: _cell(policy, access, r, p, at) for p in platforms} for r in roles}
    if args.json:
        json.dump({"policy": loaded.version, "at": at.isoformat() if at else None,
                   "matrix": cells}, sys.stdout, indent=2)
        print()
        return 0
    width = max(len(p) for p in platforms)
    col = 2 + max(*(len(r) for r in roles),
                  *(len(c) for row in cells.values() for c in row.values()))
    print(f"{policy.name} ({loaded.version})" + (f" at {at.isoformat()}" if at else ""))
    print(" " * width + "".join(r.rjust(col) for r in roles))
    for p in platforms:
        print(p.ljust(width) + "".join(cells[r][p].rjust(col) for r in roles))
    print()
    print("allow: view and post   read: view only   block: no access   DENY: blocked for everyone")
    if at is None:
        print("a*/b: a inside the role's time windows, b outside   -m: media/video CDN blocked")
    else:
        print("-m: media/video CDN blocked")
    return 0


# Short forms the loader accepts besides the full mapping (``linkedin: allow``).
_SHORT_FORMS: dict[str, dict[str, Any]] = {
    "AccessRule": {"$ref": "#/$defs/Action"},
    "Localized": {"type": "string"},
    "Pattern": {"type": "string"},
    "Severities": {"$ref": "#/$defs/Severity"},
}
_DAY = "^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$"


def policy_file_schema() -> dict[str, Any]:
    """JSON Schema for one policy file: any subset of the sections, plus ``extends``.

    A file may be an overlay that sets one field of an inherited entry, so nothing is
    required here; required fields are checked on the merged document by
    ``sargs policy check``. Unknown keys and wrong values are errors in both.
    """
    schema = Policy.model_json_schema(by_alias=True)
    schema.pop("required", None)
    defs = schema["$defs"]
    for definition in defs.values():
        definition.pop("required", None)
    for name, short in _SHORT_FORMS.items():
        if name in defs:
            defs[name] = {"anyOf": [defs[name], short], "title": defs[name].get("title", name)}
    day = {"type": "string", "pattern": _DAY}
    defs["Window"]["properties"]["days"] = {
        "anyOf": [day, {"type": "array", "items": day}],
        "title": "Days", "description": "mon … sun, ranges like mon-fri, or a list of them"}
    schema["properties"]["extends"] = {
        "type": "string", "description": "Directory this policy extends (policy.yaml only)."}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Sargs policy file"
    return schema


def _schema(args: argparse.Namespace) -> int:
    del args
    json.dump(policy_file_schema(), sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0

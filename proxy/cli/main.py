"""``sargs``: the command line. Each sub-command lives in its own module with ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that add sub-commands, in the order --help lists them.
_COMMANDS = (
    "proxy.cli.run_cmd",
    "proxy.cli.check_cmd",
    "proxy.cli.policy_cmd",
    "proxy.cli.user_cmd",
    "proxy.cli.identity_cmd",
    "proxy.cli.audit_cmd",
    "proxy.cli.ca_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sargs",
        description="Sargs: social-media compliance gateway for public institutions.",
        epilog="Settings come from SARGS_* environment variables or the TOML file named by "
        "SARGS_CONFIG (docs/configuration.md).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

"""Load the policy a command works on, or exit with its problems (file:line) on stderr.

Shared by ``sargs check``, ``sargs policy …`` and ``sargs policy test``; it lives on its
own so that those command modules do not import each other.
"""

from __future__ import annotations

import sys

from proxy.policy.loader import LoadedPolicy, PolicyError, load
from proxy.settings import Settings


def load_or_exit(directory: str | None) -> LoadedPolicy:
    """The policy in ``directory`` (default: the configured one); exit 1 if it is broken."""
    try:
        return load(directory or Settings().policy)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None

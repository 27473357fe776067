"""``sargs policy test DIR``: run the example drafts next to the rules (filled in by the
compliance work)."""

from __future__ import annotations

from typing import Any


def register(cmds: Any) -> None:
    del cmds

"""The compliance engine (placeholder until the rules engine lands)."""

from __future__ import annotations

from proxy.policy.model import Policy


class Engine:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

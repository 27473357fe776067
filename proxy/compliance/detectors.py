"""The detector protocol and the registry the engine runs, after Presidio's recognizers.

A detector reads a ``Draft`` (the text as typed, its folded form and the way back to
UTF-16 offsets: ``normalize.Draft``) and returns ``Hit``s. Detectors are built from the
policy when it is loaded (``registry.build``) and registered under the rules they report
for; a rule the policy does not set has no detector. Adding a detector is adding a class
with ``rules`` and ``find``, and a line in ``registry.build``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from proxy.compliance.config import Severity
from proxy.compliance.normalize import Draft


@dataclass(slots=True)  # made per finding
class Hit:
    rule: str
    start: int
    end: int
    """UTF-16 offsets in the draft as typed, end exclusive."""
    kind: str | None = None
    """Selects the rule's message for this kind (phone, iban, shortener …)."""
    ref: int = -1
    """For embargo terms: the index of the embargo."""
    disguised: bool = False
    """Found only after reading through hidden or look-alike characters."""
    quoted_as: Severity | None = None
    """Inside quotation marks, of a rule that lowers such findings to this severity."""


class Detector(Protocol):
    @property
    def rules(self) -> frozenset[str]:
        """The rule ids this detector reports under."""
        ...

    def find(self, draft: Draft) -> list[Hit]: ...


class Registry:
    """The detectors of one policy, by rule (``add``; ``detectors``: all, in order)."""

    def __init__(self) -> None:
        self.detectors: list[Detector] = []
        self.by_rule: dict[str, list[Detector]] = {}

    def add(self, detector: Detector) -> None:
        self.detectors.append(detector)
        for rule in sorted(detector.rules):
            self.by_rule.setdefault(rule, []).append(detector)

    def find(self, draft: Draft) -> list[Hit]:
        out: list[Hit] = []
        for detector in self.detectors:
            out += detector.find(draft)
        return out

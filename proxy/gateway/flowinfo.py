"""What the Sargs add-ons learned about one flow: one typed record under one metadata key.

The access add-on creates it (identity, platform, request kind, language, decision); the
post check adds its verdict and findings; injection says what it injected; the decision
log, metrics and the event spool read it. Every add-on goes through :func:`info` — no
other ``flow.metadata`` key is Sargs's (mitmproxy's ``proxyauth`` shares what it learned
the same way, through one value).

Findings are kept as (rule, severity) pairs: the record never holds draft text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mitmproxy import flow as mflow

from proxy.policy.decide import Decision, RequestKind, Subject

KEY = "sargs"
"""The one ``flow.metadata`` key Sargs uses."""

Generated = Literal["access", "posts", "inject", "reserved"]
"""Which add-on answered the flow itself (block page, refused post, reserved path)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One finding of an outgoing-post check, as far as logs and metrics may know it."""

    rule: str
    severity: str
    simulated: bool = False
    """Found by a rule in simulation: reported, never refused."""


@dataclass(slots=True)
class FlowInfo:
    """Sargs's view of one flow; fields stay ``None`` until an add-on learns them."""

    subject: Subject | None = None
    platform: str | None = None
    host: str | None = None
    """The canonical host the decision was made for."""
    kind: RequestKind | None = None
    lang: str = "en"
    decision: Decision | None = None
    verdict: str | None = None
    """The outgoing-post check's verdict (``ok``/``info``/``warn``/``block``), if checked."""
    findings: list[Hit] = field(default_factory=list)
    allowance: str | None = None
    """The allowance that let this post through although its findings refuse it."""
    refused: str | None = None
    """Why Sargs refused the flow itself when it was not the access decision (a post's
    findings, an unreadable post, a host mismatch...): a short machine-readable reason."""
    generated: Generated | None = None
    injected: bool = False
    buffered: bool = False
    """Injection chose to buffer the response (at ``responseheaders``) to inject into it."""
    recorded: bool = False
    """Set once the flow's outcome reached the event spool (a flow may end in ``response``
    and then ``error``: each reader acts once, and marks its own flag)."""
    counted: bool = False
    """Set once the metrics counted the flow."""
    logged: bool = False
    """Set once the decision log wrote the flow's line."""


def info(flow: mflow.Flow) -> FlowInfo:
    """The flow's record, created on first access."""
    record = flow.metadata.get(KEY)
    if record is None:
        record = flow.metadata[KEY] = FlowInfo()
    return record


def peek(flow: mflow.Flow) -> FlowInfo | None:
    """The flow's record if an add-on made one (a flow Sargs never looked at has none)."""
    return flow.metadata.get(KEY)

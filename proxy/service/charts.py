"""Dashboard figures and their charts, drawn server-side as inline SVG (no JavaScript).

Each chart is a ``<figure>`` with an SVG (``role="img"`` and a title) and the same numbers
as a table, so it reads without scripts and with a screen reader.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from markupsafe import Markup

from proxy.service.auditview import rules_of
from proxy.store import audit, grants, requests
from proxy.store.db import Store

COLORS = ("#1f5fa8", "#c8553d", "#2a9d5b", "#8a5cb8", "#d08c00", "#4d6b7a", "#b8336a",
          "#5d8a00")
_MAX_ROWS = 5000
"""Rows read per figure (the dashboard covers days, not years)."""


@dataclass
class DashboardData:
    requests: Counter[str] = field(default_factory=Counter)
    grants: Counter[str] = field(default_factory=Counter)
    pending: int = 0
    active: int = 0
    days: list[date] = field(default_factory=list)
    per_rule: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """Series ``(kind, rule)`` (``("block", "role")``) → count per day."""
    coaching: dict[str, Counter[str]] = field(default_factory=dict)
    """Rule → counts of what people and simulation did about its findings: ``would-block``,
    ``would-warn`` (simulation), ``override``, ``false-positive``, ``review-request``,
    ``review-approve``, ``review-return``, ``allowance-use``."""
    reasons: dict[str, Counter[str]] = field(default_factory=dict)
    """Rule → the reasons given for overriding it, with how often each was given."""


COACHING_KINDS = ("post-simulated", "post-override", "false-positive", "review-request",
                  "review-approve", "review-return", "allowance-use")
COACHING_COLUMNS = ("would-block", "would-warn", "override", "false-positive",
                    "review-request", "review-approve", "review-return")
"""The dashboard's coaching table, left to right (TASK-16's audit kinds)."""


def _coaching_column(kind: str, details: Mapping[str, Any]) -> str:
    if kind == "post-simulated":
        return "would-warn" if details.get("would") == "warn" else "would-block"
    if kind == "post-override":
        return "override"
    return kind


def _rules(details: Mapping[str, Any]) -> list[str]:
    """The rule(s) a block or warn event names (``rule``, ``rules`` or ``findings``)."""
    return rules_of(details) or ["(none)"]


def collect(store: Store, *, since: datetime, now: datetime) -> DashboardData:
    """Requests and grants per platform since ``since``; blocks and warnings per rule and
    day (sync: call in a thread)."""
    data = DashboardData()
    for r in requests.list_requests(store, limit=_MAX_ROWS):
        if r.created_at >= since:
            data.requests[r.platform] += 1
        if r.status == "pending":
            data.pending += 1
    for g in grants.list_grants(store, limit=_MAX_ROWS):
        if g.starts_at >= since:
            data.grants[g.platform] += 1
    data.active = len(grants.list_active(store, now))
    first = since.date()
    data.days = [first + timedelta(days=i) for i in range((now.date() - first).days + 1)]
    index = {d: i for i, d in enumerate(data.days)}
    for e in audit.query(store, kind=["block", "warn"], since=since, limit=_MAX_ROWS * 4):
        day = index.get(e.at.date())
        if day is None:
            continue
        for rule in _rules(e.details):
            series = data.per_rule.setdefault((e.kind, rule), [0] * len(data.days))
            series[day] += 1
    for e in audit.query(store, kind=COACHING_KINDS, since=since, limit=_MAX_ROWS * 4):
        column = _coaching_column(e.kind, e.details)
        reason = e.details.get("reason")
        for rule in _rules(e.details):
            data.coaching.setdefault(rule, Counter())[column] += 1
            if column == "override" and isinstance(reason, str) and reason.strip():
                data.reasons.setdefault(rule, Counter())[" ".join(reason.split())[:120]] += 1
    return data


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * 4
    return value


def bar_chart(rows: Sequence[tuple[str, int, int]], series: tuple[str, str], *,
              title: str) -> Markup:
    """Horizontal grouped bars: per label, two values (e.g. requests and grants)."""
    width, label_w, bar_h, gap = 640, 150, 12, 10
    height = max(1, len(rows)) * (2 * bar_h + gap) + 40
    top = max([1, *(max(a, b) for _, a, b in rows)])
    scale = (width - label_w - 50) / _nice_max(top)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} '
             f'{height}" width="100%" style="max-width:{width}px">'
             f'<title>{escape(title)}</title>']
    for i, name in enumerate(series):
        parts.append(f'<rect x="{label_w + i * 140}" y="4" width="10" height="10" '
                     f'fill="{COLORS[i]}"/><text x="{label_w + 14 + i * 140}" y="13" '
                     f'font-size="11">{escape(name)}</text>')
    y = 28
    for label, a, b in rows:
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h + 3}" font-size="12" '
                     f'text-anchor="end">{escape(label)}</text>')
        for j, value in enumerate((a, b)):
            w = value * scale
            parts.append(f'<rect x="{label_w}" y="{y + j * bar_h}" width="{w:.1f}" '
                         f'height="{bar_h - 2}" fill="{COLORS[j]}"><title>{escape(label)}: '
                         f'{value}</title></rect><text x="{label_w + w + 4:.1f}" '
                         f'y="{y + j * bar_h + bar_h - 3}" font-size="10">{value}</text>')
        y += 2 * bar_h + gap
    if not rows:
        parts.append(f'<text x="{label_w}" y="40" font-size="12">–</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped


def line_chart(days: Sequence[date], series: Mapping[str, Sequence[int]], *,
               title: str) -> Markup:
    """One line per series over the days (blocks and warnings per rule)."""
    width, height, left, bottom, legend_h = 640, 220, 40, 30, 16
    names = sorted(series)
    top_y = 10 + legend_h * ((len(names) + 2) // 3)
    total_h = height + top_y
    peak = _nice_max(max([1, *(max(v, default=0) for v in series.values())]))
    plot_w = width - left - 24  # room for the last day's label
    plot_h = height - bottom - 10
    step = plot_w / max(1, len(days) - 1)

    def xy(i: int, v: int) -> str:
        return f"{left + i * step:.1f},{top_y + plot_h - v * plot_h / peak:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} '
             f'{total_h}" width="100%" style="max-width:{width}px">'
             f'<title>{escape(title)}</title>']
    for k, name in enumerate(names):
        color = COLORS[k % len(COLORS)]
        lx, ly = left + (k % 3) * 200, 12 + legend_h * (k // 3)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 14}" y="{ly}" font-size="11">{escape(name)}</text>')
    for frac in (0, 0.5, 1):
        y = top_y + plot_h - frac * plot_h
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#ccc"/><text x="{left - 4}" y="{y + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{int(peak * frac)}</text>')
    for i, d in enumerate(days):
        if i % max(1, len(days) // 7) == 0:
            parts.append(f'<text x="{left + i * step:.1f}" y="{top_y + plot_h + 16}" '
                         f'font-size="10" text-anchor="middle">{d:%m-%d}</text>')
    for k, name in enumerate(names):
        color = COLORS[k % len(COLORS)]
        points = " ".join(xy(i, v) for i, v in enumerate(series[name]))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                     f'points="{points}"><title>{escape(name)}</title></polyline>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped

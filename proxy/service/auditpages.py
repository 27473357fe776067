"""Approvers' reading pages: the audit log (``/audit`` with filters, ``/audit.csv``) and the
dashboard (``/dashboard``: inline SVG charts, readable without JavaScript)."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from proxy.i18n import Translator
from proxy.service import auditview, charts, keys, localize
from proxy.service.access import policy_of
from proxy.service.approve import pending_count
from proxy.service.auth import require_approver
from proxy.service.pages import language, render
from proxy.store import audit

routes = web.RouteTableDef()

# --- audit ----------------------------------------------------------------------------------

AUDIT_PAGE = 100


def _day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), UTC)
    except ValueError:
        raise web.HTTPUnprocessableEntity(
            text=f'{{"error": "invalid request: {field}", "details": [{{"field": "{field}", '
                 f'"message": "a date like 2026-11-23"}}]}}',
            content_type="application/json") from None


def audit_filters(request: web.Request) -> dict[str, Any]:
    q = request.query
    kind = q.get("kind", "")
    if kind and kind not in {k.value for k in audit.Kind}:
        kind = ""
    until = _day(q.get("until", ""), "until")
    return {"kind": kind or None, "user": q.get("user") or None,
            "actor": q.get("actor") or None, "platform": q.get("platform") or None,
            "since": _day(q.get("since", ""), "since"),
            "until": until + timedelta(days=1) if until else None}


@routes.get("/audit")
async def audit_page(request: web.Request) -> web.Response:
    approver = await require_approver(request)
    filters = audit_filters(request)
    try:
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        offset = 0
    store = request.app[keys.STORE]

    def load() -> tuple[list[audit.AuditEntry], int]:
        return (audit.query(store, **filters, limit=AUDIT_PAGE, offset=offset),
                audit.count(store, **filters))

    entries, total = await asyncio.to_thread(load)
    query = {k: v for k, v in request.query.items() if k != "offset" and v}
    lang = language(request)
    policy = policy_of(request)
    t = Translator("service", lang)
    sentences = auditview.Sentences(
        t, rule_name=lambda r: localize.rule_name(policy, r, lang),
        role_name=lambda r: localize.role_name(policy, r, lang),
        platform_name=lambda p: localize.platform_name(policy, p),
        duration=lambda m: localize.duration(m, lang))
    human, machine = sentences.lines(entries)
    kinds = [(k.value, t("kind_" + k.value.replace("-", "_"))) for k in audit.Kind]
    return render(request, "audit.html", human=human, machine=machine, total=total,
                  offset=offset, page=AUDIT_PAGE, query=query,
                  kinds=sorted(kinds, key=lambda k: k[1].casefold()),
                  details_text=auditview.details_text,
                  badge=await pending_count(request, approver))


@routes.get("/audit.csv")
async def audit_csv(request: web.Request) -> web.Response:
    await require_approver(request)
    filters = audit_filters(request)
    out = io.StringIO()
    await asyncio.to_thread(audit.export_csv, request.app[keys.STORE], out, **filters)
    return web.Response(body=out.getvalue().encode(), content_type="text/csv",
                        charset="utf-8", headers={
                            "Content-Disposition": 'attachment; filename="sargs-audit.csv"',
                            "Cache-Control": "no-store"})


# --- dashboard ------------------------------------------------------------------------------

DASHBOARD_DAYS = 14


@routes.get("/dashboard")
async def dashboard_page(request: web.Request) -> web.Response:
    approver = await require_approver(request)
    store = request.app[keys.STORE]
    now = datetime.now(UTC)
    since = now - timedelta(days=DASHBOARD_DAYS)

    def load() -> charts.DashboardData:
        return charts.collect(store, since=since, now=now)

    data = await asyncio.to_thread(load)
    policy = policy_of(request)
    names = {pid: p.name for pid, p in policy.platforms.items()}
    t = Translator("service", language(request))
    per_platform = charts.bar_chart(
        [(names.get(p, p), data.requests.get(p, 0), data.grants.get(p, 0))
         for p in sorted(set(data.requests) | set(data.grants))],
        (t("chart_requests"), t("chart_grants")), title=t("chart_per_platform"))
    lang = t.lang
    rule = {r: localize.rule_name(policy, r, lang) for _, r in data.per_rule}
    rule |= {r: localize.rule_name(policy, r, lang) for r in data.coaching}
    rule["(none)"] = t("rule_none")
    labelled = {f"{t('kind_' + kind)} · {rule[r]}": series
                for (kind, r), series in data.per_rule.items()}
    over_time = charts.line_chart(data.days, labelled, title=t("chart_per_rule"))
    coaching = sorted(data.coaching.items(), key=lambda item: rule[item[0]].casefold())
    return render(request, "dashboard.html", data=data, names=names,
                  per_platform=per_platform, over_time=over_time, days=DASHBOARD_DAYS,
                  per_rule=sorted(labelled.items()), coaching=coaching, rule=rule,
                  columns=charts.COACHING_COLUMNS,
                  badge=await pending_count(request, approver))



def setup(app: web.Application) -> None:
    app.add_routes(routes)

"""The reviewers' pages of review before posting (``reviews.py`` has the API, the
decisions and the housekeeping).

``GET /reviews`` (the queue: pending drafts the policy lets this reviewer decide),
``GET /reviews/mine`` (an author's own reviews), ``GET /reviews/{id}`` (the draft opened for
the reviewer, the service's findings on it, the author's earlier reviews), and the forms
``POST /reviews/{id}/approve`` and ``/return`` (CSRF). Nothing here logs a draft.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from proxy.checkpool import CheckTimeout, CheckUnavailable
from proxy.compliance.config import RULE_IDS
from proxy.compliance.model import CheckRequest
from proxy.compliance.policytest import utf16_slice
from proxy.policy.scopes import is_approver, may_review
from proxy.service import keys
from proxy.service.access import policy_of
from proxy.service.approve import Refused, pending_count
from proxy.service.auth import require_user
from proxy.service.check import CHECKPOOL
from proxy.service.csrf import CSRF_FIELD, check_csrf
from proxy.service.errors import read_form
from proxy.service.pages import language, render
from proxy.service.reviews import decidable, decide, review_key, reviewer_of, texts, unavailable
from proxy.store import StoreError, users
from proxy.store import reviews as rv
from proxy.store.reviewkey import ReviewKeyError
from proxy.store.users import User

log = logging.getLogger("sargs.service.reviews")
routes = web.RouteTableDef()


async def queue(request: web.Request, reviewer: User) -> list[tuple[rv.Review, User | None]]:
    store = request.app[keys.STORE]
    policy = policy_of(request)

    def load_all() -> tuple[list[rv.Review], dict[str, User]]:
        return (rv.list_reviews(store, status=rv.PENDING, limit=500),
                {u.name: u for u in users.list_users(store)})

    pending, people = await asyncio.to_thread(load_all)
    return [(r, people.get(r.user)) for r in pending
            if may_review(policy, reviewer, people.get(r.user), r.platform, r.user)]


async def _badge(request: web.Request, user: User) -> int | None:
    """The approvers' navigation (with their pending count), as the approver pages show
    it; ``None`` for others."""
    if not is_approver(user, policy_of(request)):
        return None
    return await pending_count(request, user)


def _msg(request: web.Request) -> str:
    key = request.query.get("msg", "")
    return key if key.startswith("msg_") else ""


@routes.get("/reviews")
async def queue_page(request: web.Request) -> web.Response:
    reviewer = await reviewer_of(request)
    items = await queue(request, reviewer)
    names = {pid: p.name for pid, p in policy_of(request).platforms.items()}
    return render(request, "reviews.html", items=items, names=names, r=texts(request),
                  msg=_msg(request), rule_names=_rule_names(request), mine=False,
                  badge=await _badge(request, reviewer))


def _rule_names(request: web.Request) -> dict[str, str]:
    t = texts(request)
    return {rule: t("rule_" + rule.replace("-", "_")) for rule in RULE_IDS}


@routes.get("/reviews/mine")
async def mine_page(request: web.Request) -> web.Response:
    user = await require_user(request)
    found = await asyncio.to_thread(rv.list_reviews, request.app[keys.STORE], user=user.name,
                                    limit=50)
    names = {pid: p.name for pid, p in policy_of(request).platforms.items()}
    return render(request, "reviews.html", items=[(x, user) for x in found], names=names,
                  r=texts(request), msg="", rule_names=_rule_names(request), mine=True,
                  badge=await _badge(request, user))


@routes.get("/reviews/{id}")
async def review_page(request: web.Request) -> web.Response:
    reviewer = await reviewer_of(request)
    t = texts(request)
    try:
        found, author = await decidable(request, reviewer, request.match_info["id"])
    except Refused as exc:
        raise web.HTTPSeeOther(f"/reviews?msg={exc.key}") from None
    store = request.app[keys.STORE]
    draft: rv.Draft | None = None
    unreadable = False
    if found.status == rv.PENDING:
        try:
            draft = await asyncio.to_thread(rv.draft, store, review_key(request.app), found.id)
        except ReviewKeyError as exc:
            log.error("review %s: %s", found.id, exc)
            unreadable = True
    findings: list[tuple[str, str, str]] = []
    if draft is not None:
        with contextlib.suppress(CheckTimeout, CheckUnavailable):
            result = await request.app[CHECKPOOL].check(CheckRequest(
                text=draft.text, platform=found.platform, account=found.account,
                lang=language(request)))
            findings = [(f.rule, f.message, utf16_slice(draft.text, f.start, f.end))
                        for f in result.findings]
    history = await asyncio.to_thread(rv.list_reviews, store, user=found.user, limit=20)
    names = {pid: p.name for pid, p in policy_of(request).platforms.items()}
    reviews_policy = policy_of(request).reviews
    return render(request, "review.html", review=found, author=author, draft=draft,
                  retention=reviews_policy.retention_days,
                  allowance_minutes=reviews_policy.allowance_minutes,
                  unreadable=unreadable, findings=findings,
                  history=[h for h in history if h.id != found.id], names=names, r=t,
                  rule_names=_rule_names(request), msg=_msg(request),
                  badge=await _badge(request, reviewer))


async def _form_decide(request: web.Request, verdict: str) -> web.StreamResponse:
    reviewer = await reviewer_of(request)
    form = await read_form(request)
    await check_csrf(request, str(form.get(CSRF_FIELD, "")))
    comment = str(form.get("comment", "")).strip()[:rv.MAX_COMMENT]
    review_id = request.match_info["id"]
    try:
        await decide(request, reviewer, review_id, verdict, comment)
    except Refused as exc:
        where = f"/reviews/{review_id}" if exc.key == "msg_comment" else "/reviews"
        raise web.HTTPSeeOther(f"{where}?msg={exc.key}") from None
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return unavailable(exc)
    raise web.HTTPSeeOther("/reviews?msg=msg_" + ("approved" if verdict == "approve"
                                                   else "returned"))


@routes.post("/reviews/{id}/approve")
async def approve_form(request: web.Request) -> web.StreamResponse:
    return await _form_decide(request, "approve")


@routes.post("/reviews/{id}/return")
async def return_form(request: web.Request) -> web.StreamResponse:
    return await _form_decide(request, "return")


def setup(app: web.Application) -> None:
    app.add_routes(routes)

"""Review before posting ("ask a superior"): the author's API and the reviewers' pages.

Authors (the guard on a platform page, through the gateway's reserved path, or anyone
logged in to the service):

* ``POST /api/v1/reviews`` — JSON ``{text, platform, note?, account?, rules?}``. The
  service checks the text itself (the rules the review records are its own findings;
  ``rules`` from the page are ignored), refuses when nobody may review this author's
  drafts for this platform (422 ``reviewers``), seals the draft (``proxy/store/reviews.py``)
  and answers 201 ``{id, status, reviewers, poll}``. Reviewers hear of it by e-mail when
  SMTP is configured (a link, never the draft).
* ``GET /api/v1/reviews/{id}`` — the state for its author only (anyone else: 404). The
  guard polls it (every few seconds, see docs/reviews.md): ``pending``, then ``approved``
  (with the allowance's expiry: post exactly that text now) or ``returned`` (with the
  reviewer's comment).
* ``POST /api/v1/reviews/{id}/withdraw`` — the author takes it back; the draft is deleted.

Calls through a gateway carry the gateway token and ``X-Sargs-User`` (the user the
gateway identified from the connection); the service believes that header only with the
token. Other callers log in (session with CSRF header, or HTTP Basic).

Reviewers (``scopes.may_review``): the pages in ``reviewpages.py`` (the queue, a draft opened
for them, the approve and return forms), and the same decisions over JSON at
``/api/v1/reviews/{id}/approve|return`` here (``decide``). An approval issues an allowance of kind
``review`` (``allowances.issue``) that lets exactly that text through once.

Housekeeping runs ``reviews.purge`` every minute (retention: ``reviews.retention_days``).
Nothing here logs a draft.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from proxy.checkpool import CheckTimeout, CheckUnavailable
from proxy.compliance.model import CheckRequest, CheckResult
from proxy.i18n import Translator
from proxy.policy.scopes import is_reviewer, may_review
from proxy.service import keys
from proxy.service.access import policy_of, read_json, send_mail
from proxy.service.approve import Refused, store_call
from proxy.service.auth import require_user, session_of, unauthorized
from proxy.service.bundle import gateway_authorized
from proxy.service.check import CHECKPOOL
from proxy.service.csrf import CSRF_HEADER, check_csrf
from proxy.service.errors import json_error
from proxy.service.openapi import Op, Param, document
from proxy.service.pages import language
from proxy.store import (
    AlreadyDecided,
    InvalidInput,
    StoreError,
    allowances,
    users,
)
from proxy.store import reviews as rv
from proxy.store.allowances import Allowance
from proxy.store.reviewkey import ReviewKey, load
from proxy.store.users import User

log = logging.getLogger("sargs.service.reviews")
routes = web.RouteTableDef()

REVIEW_KEY = web.AppKey("sargs.review_key", ReviewKey)
USER_HEADER = "X-Sargs-User"
"""The user a gateway identified (believed only with the gateway token)."""
MAX_PENDING = 10
"""Pending reviews one author may have at once (each holds a sealed draft)."""
PURGE_INTERVAL = 60.0


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=rv.MAX_TEXT, description="The draft.")
    platform: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="Platform id.")
    note: str = Field(default="", max_length=rv.MAX_NOTE, description="For the reviewer.")
    account: Literal["official", "personal"] = "personal"
    rules: list[str] = Field(default_factory=list, max_length=rv.MAX_RULES,
                             description="Ignored: the service checks the text itself.")
    lang: Literal["en", "lv", "sv", "sq"] | None = None


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    comment: str = Field(default="", max_length=rv.MAX_COMMENT)


class ReviewOut(BaseModel):
    id: str
    status: Literal["pending", "approved", "returned", "withdrawn", "expired"]
    platform: str
    account: str
    rules: list[str]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    comment: str | None
    allowance: dict[str, Any] | None = Field(
        default=None, description="Approved: the allowance that lets exactly this text "
        "through once (the bundle's shape; gateways install it at once).")
    message: str = Field(description="The state in a sentence, in the caller's language.")


def review_key(app: web.Application) -> ReviewKey:
    """The review key (read, or made, when the service starts)."""
    return app[REVIEW_KEY]


def texts(request: web.Request) -> Translator:
    return Translator("reviews", language(request))


def out(request: web.Request, review: rv.Review, allowance: Allowance | None = None
        ) -> ReviewOut:
    t = texts(request)
    message = t("state_" + review.status, reviewer=review.decided_by or "",
                comment=review.comment or "")
    return ReviewOut(id=review.id, status=review.status, platform=review.platform,
                     account=review.account, rules=list(review.rules),
                     created_at=review.created_at, decided_at=review.decided_at,
                     decided_by=review.decided_by, comment=review.comment,
                     allowance=allowance.to_json() if allowance is not None else None,
                     message=message)


# --- who is asking ---------------------------------------------------------------------------


async def author_of(request: web.Request) -> User:
    """The author: the user a gateway vouches for, or the logged-in user (a session's
    unsafe call must carry the CSRF header)."""
    if gateway_authorized(request):
        name = request.headers.get(USER_HEADER, "").strip()
        found = await asyncio.to_thread(users.get_user, request.app[keys.STORE], name) \
            if name else None
        if found is None:
            raise unauthorized(request, "the gateway named no known user")
        return found
    if USER_HEADER in request.headers:
        raise unauthorized(request, f"{USER_HEADER} is believed only with the gateway token")
    user = await require_user(request)
    if request.method == "POST" and session_of(request) is not None \
            and "Authorization" not in request.headers:
        await check_csrf(request, request.headers.get(CSRF_HEADER))
    return user


async def reviewer_of(request: web.Request) -> User:
    user = await require_user(request)
    if not is_reviewer(user, policy_of(request)):
        raise web.HTTPForbidden(text='{"error": "only reviewers may do this"}',
                                content_type="application/json")
    return user


def _invalid(field: str, message: str) -> web.Response:
    return json_error(422, f"invalid request: {field}",
                      details=[{"field": field, "message": message}])


def unavailable(exc: Exception) -> web.Response:
    log.error("store unavailable: %s", type(exc).__name__)  # never the draft
    return json_error(503, "the review could not be stored, so it was NOT sent: the "
                           "database is unavailable. Please try again in a minute.")


async def _candidates(request: web.Request, author: User, platform: str) -> list[User]:
    policy = policy_of(request)
    people = await asyncio.to_thread(users.list_users, request.app[keys.STORE])
    return [p for p in people if may_review(policy, p, author, platform, author.name)]


# --- the author's API ------------------------------------------------------------------------


@routes.post("/api/v1/reviews")
async def submit_api(request: web.Request) -> web.Response:
    author = await author_of(request)
    body = ReviewIn.model_validate(await read_json(request))
    policy = policy_of(request)
    if body.platform not in policy.platforms:
        return _invalid("platform", f"unknown platform {body.platform!r}")
    reviewers = await _candidates(request, author, body.platform)
    if not reviewers:
        return _invalid("reviewers", "nobody may review your drafts for this platform: "
                                     "ask your administrator (policy: reviews.rules)")
    try:
        result: CheckResult = await request.app[CHECKPOOL].check(CheckRequest(
            text=body.text, platform=body.platform, account=body.account,
            lang=body.lang or language(request)))
    except (CheckTimeout, CheckUnavailable) as exc:
        response = json_error(503, str(exc))
        response.headers["Retry-After"] = "1"
        return response
    store = request.app[keys.STORE]
    pending = await asyncio.to_thread(rv.list_reviews, store, status=rv.PENDING,
                                      user=author.name, limit=MAX_PENDING + 1)
    if len(pending) >= MAX_PENDING:
        return json_error(429, f"you have {MAX_PENDING} drafts waiting for review already: "
                               "wait for a decision or withdraw one")
    try:
        made = await asyncio.to_thread(
            rv.submit, store, review_key(request.app), user=author.name,
            platform=body.platform, text=body.text, note=body.note,
            rules=[f.rule for f in result.findings], account=body.account,
            retention_days=policy.reviews.retention_days)
    except InvalidInput as exc:
        return _invalid(exc.field, exc.message)
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return unavailable(exc)
    _notify_reviewers(request, made, author, reviewers)
    return web.json_response({"id": made.id, "status": made.status,
                              "reviewers": len(reviewers),
                              "poll": f"/api/v1/reviews/{made.id}"}, status=201)


async def _own(request: web.Request) -> tuple[User, rv.Review]:
    author = await author_of(request)
    found = await asyncio.to_thread(rv.get, request.app[keys.STORE], request.match_info["id"])
    if found is None or found.user != author.name:
        raise web.HTTPNotFound(text='{"error": "no such review"}',
                               content_type="application/json")
    return author, found


@routes.get("/api/v1/reviews/{id}")
async def state_api(request: web.Request) -> web.Response:
    _, found = await _own(request)
    allowance = None
    if found.allowance_id is not None:
        allowance = await asyncio.to_thread(allowances.get, request.app[keys.STORE],
                                            found.allowance_id)
    response = web.json_response(out(request, found, allowance).model_dump(mode="json"))
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post("/api/v1/reviews/{id}/withdraw")
async def withdraw_api(request: web.Request) -> web.Response:
    author, found = await _own(request)
    try:
        gone = await asyncio.to_thread(rv.withdraw, request.app[keys.STORE], found.id,
                                       author.name)
    except AlreadyDecided as exc:
        return json_error(409, f"already {exc.status}")
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return unavailable(exc)
    return web.json_response(out(request, gone).model_dump(mode="json"))


# --- deciding --------------------------------------------------------------------------------


async def decidable(request: web.Request, reviewer: User, review_id: str
                     ) -> tuple[rv.Review, User | None]:
    store = request.app[keys.STORE]
    found = await asyncio.to_thread(rv.get, store, review_id)
    if found is None:
        raise Refused(404, "msg_not_found", "no such review")
    author = await asyncio.to_thread(users.get_user, store, found.user)
    if found.user == reviewer.name:
        raise Refused(403, "msg_self", "nobody reviews their own draft")
    if not may_review(policy_of(request), reviewer, author, found.platform, found.user):
        raise Refused(403, "msg_not_yours", "the review policy does not let you decide "
                                            "this draft")
    return found, author


async def decide(request: web.Request, reviewer: User, review_id: str, verdict: str,
                 comment: str) -> rv.Review:
    """Approve (issuing the allowance) or return one review; tell the author by e-mail."""
    _, author = await decidable(request, reviewer, review_id)
    store = request.app[keys.STORE]
    policy = policy_of(request)
    decided: rv.Review
    if verdict == "approve":
        decided, _ = await store_call(rv.approve, store, review_id, reviewer.name, comment,
                                      minutes=policy.reviews.allowance_minutes)
    else:
        if not comment.strip():
            raise Refused(422, "msg_comment", "comment: say what to change")
        decided = await store_call(rv.return_, store, review_id, reviewer.name, comment)
    if author is not None and author.email:
        settings = request.app[keys.SETTINGS]
        send_mail(request.app, author.email, "mail_decided_subject", "mail_decided_body",
                  domain="reviews", platform=decided.platform, status=decided.status,
                  link=f"{settings.public_service_url}/reviews/mine")
    return decided


def _refused_json(exc: Refused) -> web.Response:
    if exc.status == 422:
        field = exc.message.split(":", 1)[0]
        return _invalid(field, exc.message)
    return json_error(exc.status, exc.message)


async def _decide_api(request: web.Request, verdict: str) -> web.Response:
    reviewer = await reviewer_of(request)
    if session_of(request) is not None and "Authorization" not in request.headers:
        await check_csrf(request, request.headers.get(CSRF_HEADER))
    body = DecideIn.model_validate(await read_json(request))
    try:
        decided = await decide(request, reviewer, request.match_info["id"], verdict,
                               body.comment)
    except Refused as exc:
        return _refused_json(exc)
    except (SQLAlchemyError, StoreError, OSError) as exc:
        return unavailable(exc)
    return web.json_response(out(request, decided).model_dump(mode="json"))


@routes.post("/api/v1/reviews/{id}/approve")
async def approve_api(request: web.Request) -> web.Response:
    return await _decide_api(request, "approve")


@routes.post("/api/v1/reviews/{id}/return")
async def return_api(request: web.Request) -> web.Response:
    return await _decide_api(request, "return")


# --- notifications and housekeeping ----------------------------------------------------------


def _notify_reviewers(request: web.Request, made: rv.Review, author: User,
                      reviewers: list[User]) -> None:
    settings = request.app[keys.SETTINGS]
    link = f"{settings.public_service_url}/reviews/{made.id}"
    for reviewer in reviewers:
        if reviewer.email:
            send_mail(request.app, reviewer.email, "mail_new_subject", "mail_new_body",
                      domain="reviews", user=author.display_name or author.name,
                      platform=made.platform, link=link)


async def purge_now(app: web.Application) -> tuple[int, int]:
    expired, deleted = await asyncio.to_thread(rv.purge, app[keys.STORE])
    if expired or deleted:
        log.info("review retention: %d expired, %d deleted", expired, deleted)
    return expired, deleted


async def _purge_ctx(app: web.Application) -> AsyncIterator[None]:
    """Read (or make, at first run) the review key; then apply retention every minute."""
    settings = app[keys.SETTINGS]
    app[REVIEW_KEY] = await asyncio.to_thread(load, settings.review_key_path,
                                              settings.review_key.get_secret_value())
    closing = asyncio.Event()

    async def loop() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), PURGE_INTERVAL)
            if closing.is_set():
                return
            try:
                await purge_now(app)
            except (SQLAlchemyError, StoreError, OSError) as exc:
                log.warning("review retention failed: %s", exc)

    task = asyncio.get_running_loop().create_task(loop())
    yield
    closing.set()
    await task




_ID = Param("id", "path", required=True)
_SENT_BY = ("A logged-in author (Basic, or a session with X-CSRF-Token), or a gateway "
            "(its bearer token and X-Sargs-User: the user it identified).")
for _method, _path, _op in (
    ("POST", "/api/v1/reviews", Op(
        "Ask a superior: send a draft for review", "reviews", body=ReviewIn, ok=201,
        errors=(400, 401, 403, 422, 503),
        description="The one place a draft is stored: sealed (AES-256-GCM, key outside the "
                    "database), deleted when decided or after reviews.retention_days. The "
                    "service checks the text itself. 422 'reviewers' when nobody may review "
                    "this author's drafts; 429 with ten drafts waiting. " + _SENT_BY)),
    ("GET", "/api/v1/reviews/{id}", Op(
        "The state of one review, for its author only (others: 404)", "reviews",
        answer=ReviewOut, params=(_ID,), errors=(401, 404),
        description="The guard polls it. " + _SENT_BY)),
    ("POST", "/api/v1/reviews/{id}/withdraw", Op(
        "Withdraw a pending review (its draft is deleted)", "reviews", answer=ReviewOut,
        params=(_ID,), errors=(401, 404, 409, 503))),
    ("POST", "/api/v1/reviews/{id}/approve", Op(
        "Approve: exactly this text may be posted once (an allowance of kind review)",
        "reviews", security="approver", body=DecideIn, answer=ReviewOut, params=(_ID,),
        errors=(400, 401, 403, 404, 409, 422, 503),
        description="Reviewers are named by the policy's reviews.rules.")),
    ("POST", "/api/v1/reviews/{id}/return", Op(
        "Return to the author with a comment (required)", "reviews", security="approver",
        body=DecideIn, answer=ReviewOut, params=(_ID,),
        errors=(400, 401, 403, 404, 409, 422, 503))),
):
    document(_method, _path, _op)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_purge_ctx)
    app.add_routes(routes)


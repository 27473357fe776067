"""Server-side checks of outgoing posts: they hold even where the content script never ran.

For a request of an allowed user to one of the platform's posting endpoints (catalog:
method, path pattern, where the text sits), every text location present is extracted
(:mod:`proxy.gateway.extract`) and checked with the policy's compliance engine:

- a ``block`` finding refuses the post: JSON 403
  ``{"error": "refused", "verdict", "findings": [...], "message"}`` with the message in the
  user's language; the post never reaches the platform;
- ``warn`` (and ``info``) lets the post through unchanged, byte for byte, and logs one
  line with the rule ids and their counts;
- a post that would be refused is let through once when an active allowance of this user
  and platform matches the hash of its text (``proxy.compliance.texthash``: the post's
  texts joined) and covers every blocking rule: the user proceeded with a reason, or a
  reviewer approved that text. It is used at once here and reported (``allowance-use``);
  a changed text, or the same text again, is refused as before;
- a finding in simulation (``simulated``) refuses nothing: the post passes, and what
  would have happened is reported (``post-simulated``: rules, ``would`` block or warn).

The refusal names the findings' ways forward (``ways``) and where to take them: the
guard's own ``/__sargs/api/v1/proceed`` on the page, or the service's ``/proceed`` page
when the script never ran (a post sent by a page navigation gets the refusal as a page,
``templates/post_refused.html``).

Draft text is never stored or logged. The account is taken as ``personal``: nothing in a
request tells reliably that it posts as an institution's page. Media in the body
(multipart files, media ids in JSON) become attachments, so the minors' consent and
copyright reminders apply. If the check itself fails the post is refused (fail closed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from mitmproxy import http

from proxy.checkpool import CheckTimeout
from proxy.compliance.model import MAX_TEXT, Attachment, CheckRequest, CheckResult, Finding
from proxy.compliance.texthash import text_hash
from proxy.gateway.bundle import BundleAllowances
from proxy.gateway.extract import Request, Unreadable, all_texts, attachments
from proxy.gateway.flowinfo import FlowInfo, Hit, info, peek
from proxy.i18n import Translator
from proxy.policy.canonical import canonical_path, is_unsafe
from proxy.policy.decide import RequestKind, Subject
from proxy.runtime import Compiled

log = logging.getLogger("sargs.posts")

_RANK = {"ok": 0, "info": 1, "warn": 2, "block": 3}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def official_allowed(compiled: Compiled, subject: Subject) -> bool:
    """Whether one of the user's roles may post as the institution's official accounts."""
    roles = compiled.loaded.policy.roles
    return any(roles[r].official_accounts for r in subject.roles if r in roles)


OVERLAP = 2_000
"""Characters each piece of a long text shares with the next: anything shorter than this
that a rule finds (a phone number, an identity number, a phrase) lies whole in a piece."""
CHECK_BUDGET = 5.0
"""Seconds a post check may take before the post is refused (fail closed)."""


def _chunks(text: str) -> list[tuple[int, str]]:
    """The text in overlapping pieces the engine accepts (nothing falls between two), each
    with its offset in the text in UTF-16 code units (the unit of findings' offsets)."""
    if len(text) <= MAX_TEXT:
        return [(0, text)]
    step = MAX_TEXT - OVERLAP
    starts = range(0, len(text) - OVERLAP, step)
    return [(_utf16_len(text[:i]), text[i : i + MAX_TEXT]) for i in starts]


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


Checker = Callable[[CheckRequest], Awaitable[CheckResult]]
"""Checks one draft off the event loop: the shared process pool's ``CheckPool.check``
(``proxy/checkpool.py``), or :func:`thread_checker`. Raises when the check cannot be made
in time; the post is then refused."""


def thread_checker(compiled: Callable[[], Compiled], budget: float = CHECK_BUDGET) -> Checker:
    """Checks in a worker thread under a wall-clock ``budget`` (TimeoutError past it): off
    the event loop, though the GIL is shared — the process pool is the better checker."""

    async def check(request: CheckRequest) -> CheckResult:
        current = compiled()
        work = asyncio.to_thread(current.engine.check, request, current.version)
        return await asyncio.wait_for(work, budget)

    return check


async def check_post(
    check: Checker,
    texts: list[str],
    kinds: list[str],
    *,
    platform: str,
    lang: str,
    allowed_official: bool | None,
    at: datetime | None = None,
) -> CheckResult:
    """Check every text of one post; attachments count once. Verdict: the highest.

    Findings' offsets are in their own text (a post may have several texts)."""
    findings: dict[tuple[int, str, int, int], Finding] = {}
    media = [Attachment.model_validate({"kind": k}) for k in kinds[:50]]
    pieces = [
        (n, offset, piece) for n, text in enumerate(texts) for offset, piece in _chunks(text)
    ] or [(0, 0, "")]
    verdict, policy = "ok", ""
    for i, (n, offset, piece) in enumerate(pieces):
        request = CheckRequest(
            text=piece,
            account="personal",
            platform=platform,
            attachments=media if i == 0 else [],
            lang=lang if lang in ("en", "lv", "sv", "sq") else None,
            official_allowed=allowed_official,
            at=at or datetime.now(UTC),
        )
        result = await check(request)
        policy = result.policy
        for found in result.findings:  # a finding in an overlap is found twice: keep one
            start, end = found.start + offset, found.end + offset
            key = (n, found.rule, start, end)
            findings.setdefault(key, found.model_copy(update={"start": start, "end": end}))
        if _RANK[result.verdict] > _RANK[verdict]:
            verdict = result.verdict
    return CheckResult.model_validate(
        {"verdict": verdict, "policy": policy, "findings": list(findings.values())}
    )


def ways_forward(result: CheckResult) -> list[str]:
    """The ways forward past every refusing finding: those all of them allow, in the
    policy's order (an allowance must cover every blocking rule)."""
    blocking = [f for f in result.findings if f.severity == "block" and not f.simulated]
    if not blocking:
        return []
    common = [w for w in blocking[0].ways if all(w in f.ways for f in blocking[1:])]
    return [str(w) for w in common]


def refusal(result: CheckResult, lang: str, origin: str | None = None,
            service_url: str = "", platform: str = "", html: bool = False) -> http.Response:
    """The JSON 403 a refused post gets; the message can be shown by the platform's page.
    It names the ways forward (``ways``) and where to take them (``proceed``). A post sent
    by a page navigation (a plain form: ``html``) gets the same as a page."""
    t = Translator("posts", lang)
    blocking = [f for f in result.findings if f.severity == "block" and not f.simulated]
    reasons = "; ".join(dict.fromkeys(f.message for f in blocking))
    ways = ways_forward(result)
    link = (f"{service_url.rstrip('/')}/proceed?" + urlencode({"platform": platform})
            if service_url and ways else None)
    if ways:
        message = t("refused_ways", reasons=reasons,
                    ways="; ".join(t(f"way_{w}") for w in ways))
        if link:
            message = f"{message} {t('ways_where', url=link)}"
    else:
        message = t("refused", reasons=reasons)
    if html:
        page = _refused_template().render(
            lang=t.lang, t=t, findings=blocking, ways=ways, link=link)
        return http.Response.make(403, page.encode(), {
            "Content-Type": "text/html; charset=utf-8", "Content-Language": t.lang,
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "base-uri 'none'; form-action 'none'"})
    payload: dict[str, Any] = {
        "error": "refused",
        "verdict": result.verdict,
        "policy": result.policy,
        "findings": [f.model_dump(mode="json") for f in result.findings],
        "ways": ways,
        "proceed": link,
        "message": message,
    }
    headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    if origin:
        headers |= {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }
    return http.Response.make(403, json.dumps(payload, ensure_ascii=False).encode(), headers)


@functools.cache
def _refused_template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, auto_reload=False)
    return env.get_template("post_refused.html")


def _json_error(status: int, error: str, message: str) -> http.Response:
    return http.Response.make(
        status,
        json.dumps({"error": error, "message": message}, ensure_ascii=False).encode(),
        {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"},
    )


def unreadable(lang: str) -> http.Response:
    """403 for a post that cannot be decoded, parsed or read where its text should be."""
    return _json_error(403, "post-unreadable", Translator("posts", lang)("unreadable"))


def too_large(limit: int, lang: str) -> http.Response:
    return _json_error(413, "post-too-large", Translator("posts", lang)("too_large", limit=limit))


def check_failed(lang: str) -> http.Response:
    payload = {"error": "check-failed", "message": Translator("posts", lang)("check_failed")}
    return http.Response.make(
        503,
        json.dumps(payload, ensure_ascii=False).encode(),
        {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"},
    )


def summary(result: CheckResult) -> dict[str, int]:
    """Rule ids and how often each was found: all a log line may say about a draft."""
    return dict(sorted(Counter(f.rule for f in result.findings).items()))


class Posts:
    """Checks posts to catalog posting endpoints; runs after the access addon."""

    def __init__(
        self,
        compiled: Callable[[], Compiled],
        *,
        now: Callable[[], datetime] = _utcnow,
        check: Checker | None = None,
        allowances: BundleAllowances | None = None,
        events: Callable[[dict[str, Any]], None] | None = None,
        service_url: str = "",
        on_refusal: Callable[[http.HTTPFlow], None] | None = None,
    ) -> None:
        self.compiled = compiled
        self.on_refusal = on_refusal
        """Told of every post refused, its answer set (``LastRefusals.remember``)."""
        self.now = now
        self.allowances = allowances
        """Permissions to post one text once (the bundle's); ``None``: none are honoured."""
        self.events = events
        """Where ``post-simulated`` events go (the event spool), if anywhere."""
        self.service_url = service_url
        self.check = check or thread_checker(compiled)
        """Where drafts are checked: give the shared process pool's ``check`` (``sargs
        run``); the default is a worker thread with a time budget."""

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Checks allowed posts (a coroutine mitmproxy awaits); every other request
        returns at once, without one."""
        if flow.response or flow.error or not flow.live:
            return None
        record = peek(flow)
        if record is None or record.kind is not RequestKind.post:
            return None
        if not is_unsafe(flow.request.method):
            return None
        return self._check(flow, record)

    async def _check(self, flow: http.HTTPFlow, record: FlowInfo) -> None:
        decision, subject, platform = record.decision, record.subject, record.platform
        if decision is None or not decision.allowed or not platform:
            return
        request = flow.request
        compiled = self.compiled()
        path = canonical_path(request.path)
        endpoint = (
            compiled.catalog.posting_endpoint(platform, record.host or "", path) if path else None
        )
        if endpoint is None:
            return
        spec = compiled.catalog.platforms[platform]
        lang = record.lang
        if len(request.raw_content or b"") > spec.max_post_bytes:
            self._refuse(flow, "post-too-large", too_large(spec.max_post_bytes, lang))
            return
        try:
            body = Request(
                request.get_content(strict=True) or b"",
                request.headers.get("Content-Type", ""),
                request.path.partition("?")[2],
            )
            texts = all_texts(body, endpoint.text)
        except (ValueError, Unreadable) as exc:  # ValueError: a Content-Encoding not decoded
            self._unreadable(flow, spec.unreadable_posts, platform, str(exc), lang)
            return
        if not texts:
            return  # the endpoint is used for something else this time (GraphQL)
        allowed_official = official_allowed(compiled, subject) if subject is not None else None
        try:
            result = await check_post(
                self.check, texts, attachments(body), platform=platform, lang=lang,
                at=self.now(), allowed_official=allowed_official,
            )
        except (TimeoutError, CheckTimeout):
            log.warning("post check over its time budget; refusing the post", extra={
                "event": {"event": "post-check-failed", "platform": platform,
                          "error": "timeout"}})
            self._refuse(flow, "post-check-failed", check_failed(lang))
            return
        except Exception:
            log.exception("post check failed; refusing the post",
                          extra={"event": {"event": "post-check-failed", "platform": platform}})
            self._refuse(flow, "post-check-failed", check_failed(lang))
            return
        record.verdict = result.verdict
        record.findings = [Hit(f.rule, f.severity, f.simulated) for f in result.findings]
        user = subject.user if subject is not None else None
        self._simulated(result, platform, user)
        if result.verdict == "block" and self._allowed(record, result, texts, platform, user):
            return
        if result.verdict == "ok":
            return
        facts = {
            "event": "post-refused" if result.verdict == "block" else "post-passed",
            "platform": platform,
            "user": subject.user if subject is not None else None,
            "verdict": result.verdict,
            "rules": summary(result),
            "policy": result.policy,
        }
        if result.verdict == "block":
            log.warning("post refused", extra={"event": facts})
            origin = self._origin(flow, compiled, platform)
            page = flow.request.headers.get("Sec-Fetch-Dest", "") == "document"
            self._refuse(flow, "post-findings",
                         refusal(result, lang, origin, self.service_url, platform, html=page))
        else:
            log.info("post passed with findings", extra={"event": facts})

    def _allowed(self, record: FlowInfo, result: CheckResult, texts: list[str],
                 platform: str, user: str | None) -> bool:
        """Whether an allowance lets this refused post through (it is then used)."""
        if self.allowances is None or user is None:
            return False
        rules = {str(f.rule) for f in result.findings
                 if f.severity == "block" and not f.simulated}
        taken = self.allowances.take(user, platform, text_hash(" ".join(texts)), rules)
        if taken is None:
            return False
        record.allowance = taken.id
        log.info("post let through by an allowance", extra={"event": {
            "event": "allowance-use", "platform": platform, "user": user,
            "allowance": taken.id, "kind": taken.kind, "rules": sorted(rules)}})
        return True

    def _simulated(self, result: CheckResult, platform: str, user: str | None) -> None:
        """Report what simulation would have done (rules and severity; never text)."""
        found = [f for f in result.findings if f.simulated and f.severity != "info"]
        if not found:
            return
        would = "block" if any(f.severity == "block" for f in found) else "warn"
        rules = summary(result.model_copy(update={"findings": found}))
        facts = {"event": "post-simulated", "platform": platform, "user": user,
                 "would": would, "rules": rules, "policy": result.policy}
        log.info("post checked in simulation", extra={"event": facts})
        if self.events is not None:
            self.events({"id": uuid.uuid4().hex, "kind": "post-simulated",
                         "at": self.now().isoformat(), "user": user, "platform": platform,
                         "details": {"rules": sorted(rules), "counts": rules,
                                     "severity": would, "would": would,
                                     "policy": result.policy}})

    def _refuse(self, flow: http.HTTPFlow, reason: str, response: http.Response) -> None:
        record = info(flow)
        record.refused = reason
        record.generated = "posts"
        flow.response = response
        if self.on_refusal is not None:
            self.on_refusal(flow)

    def _unreadable(
        self, flow: http.HTTPFlow, mode: str, platform: str, why: str, lang: str
    ) -> None:
        """A post that cannot be read: refused, unless the platform's policy says pass."""
        facts = {"event": "post-unreadable", "platform": platform, "reason": why,
                 "passed": mode == "pass"}
        log.warning("post unreadable", extra={"event": facts})
        if mode != "pass":
            self._refuse(flow, "post-unreadable", unreadable(lang))

    @staticmethod
    def _origin(flow: http.HTTPFlow, compiled: Compiled, platform: str) -> str | None:
        """The page's Origin when it belongs to the same platform (so it can read the 403)."""
        origin = flow.request.headers.get("Origin", "")
        host = origin.split("://", 1)[-1].split(":", 1)[0]
        match = compiled.catalog.match(host) if host else None
        return origin if match is not None and match.platform == platform else None

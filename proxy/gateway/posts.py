"""Server-side checks of outgoing posts: they hold even where the content script never ran.

For a request of an allowed user to one of the platform's posting endpoints (catalog:
method, path pattern, where the text sits), every text location present is extracted
(:mod:`proxy.gateway.extract`) and checked with the policy's compliance engine:

- a ``block`` finding refuses the post: JSON 403
  ``{"error": "refused", "verdict", "findings": [...], "message"}`` with the message in the
  user's language; the post never reaches the platform;
- ``warn`` (and ``info``) lets the post through unchanged, byte for byte, and logs one
  line with the rule ids and their counts.

Draft text is never stored or logged. The account is taken as ``personal``: nothing in a
request tells reliably that it posts as an institution's page. Media in the body
(multipart files, media ids in JSON) become attachments, so the minors' consent and
copyright reminders apply. If the check itself fails the post is refused (fail closed).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mitmproxy import http

from proxy.compliance.model import MAX_TEXT, Attachment, CheckRequest, CheckResult, Finding
from proxy.gateway.extract import Request, all_texts, attachments
from proxy.gateway.flowinfo import Hit, peek
from proxy.i18n import Translator
from proxy.policy.decide import RequestKind, Subject
from proxy.runtime import Compiled

log = logging.getLogger("sargs.posts")

_RANK = {"ok": 0, "info": 1, "warn": 2, "block": 3}
_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


def official_allowed(compiled: Compiled, subject: Subject) -> bool:
    """Whether one of the user's roles may post as the institution's official accounts."""
    roles = compiled.loaded.policy.roles
    return any(roles[r].official_accounts for r in subject.roles if r in roles)


def _chunks(text: str) -> list[str]:
    """The text in pieces the engine accepts (no post is longer; padding cannot hide)."""
    return [text[i : i + MAX_TEXT] for i in range(0, len(text), MAX_TEXT)] or [""]


def check_post(
    compiled: Compiled,
    texts: list[str],
    kinds: list[str],
    *,
    platform: str,
    lang: str,
    allowed_official: bool | None,
    at: datetime | None = None,
) -> CheckResult:
    """Check every text of one post; attachments count once. Verdict: the highest."""
    findings: list[Finding] = []
    media = [Attachment.model_validate({"kind": k}) for k in kinds[:50]]
    pieces = [piece for text in texts for piece in _chunks(text)] or [""]
    verdict = "ok"
    for i, piece in enumerate(pieces):
        request = CheckRequest(
            text=piece,
            account="personal",
            platform=platform,
            attachments=media if i == 0 else [],
            lang=lang if lang in ("en", "lv", "sv", "sq") else None,
            official_allowed=allowed_official,
            at=at or datetime.now(UTC),
        )
        result = compiled.engine.check(request, compiled.version)
        findings.extend(result.findings)
        if _RANK[result.verdict] > _RANK[verdict]:
            verdict = result.verdict
    return CheckResult.model_validate(
        {"verdict": verdict, "policy": compiled.version, "findings": findings}
    )


def refusal(result: CheckResult, lang: str, origin: str | None = None) -> http.Response:
    """The JSON 403 a refused post gets; the message can be shown by the platform's page."""
    t = Translator("posts", lang)
    blocking = [f for f in result.findings if f.severity == "block"]
    reasons = "; ".join(dict.fromkeys(f.message for f in blocking))
    payload: dict[str, Any] = {
        "error": "refused",
        "verdict": result.verdict,
        "policy": result.policy,
        "findings": [f.model_dump(mode="json") for f in result.findings],
        "message": t("refused", reasons=reasons),
    }
    headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    if origin:
        headers |= {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }
    return http.Response.make(403, json.dumps(payload, ensure_ascii=False).encode(), headers)


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
        self, compiled: Callable[[], Compiled], *, now: Callable[[], datetime] = _utcnow
    ) -> None:
        self.compiled = compiled
        self.now = now

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        request = flow.request
        if request.method not in _METHODS:
            return
        record = peek(flow)
        if record is None or record.kind is not RequestKind.post:
            return
        decision, subject, platform = record.decision, record.subject, record.platform
        if decision is None or not decision.allowed or not platform:
            return
        compiled = self.compiled()
        endpoint = compiled.catalog.posting_endpoint(
            platform, request.pretty_host, request.method, request.path
        )
        if endpoint is None:
            return
        lang = record.lang
        user = subject.user if subject is not None else None
        try:
            body = Request(
                request.get_content(strict=False) or b"",
                request.headers.get("Content-Type", ""),
                request.path.partition("?")[2],
            )
            texts = all_texts(body, endpoint.text)
            if not texts:
                return  # the endpoint is used for something else this time (GraphQL)
            result = check_post(
                compiled,
                texts,
                attachments(body),
                platform=platform,
                lang=lang,
                at=self.now(),
                allowed_official=(
                    official_allowed(compiled, subject) if subject is not None else None
                ),
            )
        except Exception:
            log.exception("post check failed; refusing the post",
                          extra={"event": {"event": "post-check-failed", "platform": platform}})
            record.refused = "post-check-failed"
            record.generated = "posts"
            flow.response = check_failed(lang)
            return
        record.verdict = result.verdict
        record.findings = [Hit(f.rule, f.severity) for f in result.findings]
        if result.verdict == "ok":
            return
        facts = {
            "event": "post-refused" if result.verdict == "block" else "post-passed",
            "platform": platform,
            "user": user,
            "verdict": result.verdict,
            "rules": summary(result),
            "policy": result.policy,
        }
        if result.verdict == "block":
            log.warning("post refused", extra={"event": facts})
            record.refused = "post-findings"
            record.generated = "posts"
            flow.response = refusal(result, lang, self._origin(flow, compiled, platform))
        else:
            log.info("post passed with findings", extra={"event": facts})

    @staticmethod
    def _origin(flow: http.HTTPFlow, compiled: Compiled, platform: str) -> str | None:
        """The page's Origin when it belongs to the same platform (so it can read the 403)."""
        origin = flow.request.headers.get("Origin", "")
        host = origin.split("://", 1)[-1].split(":", 1)[0]
        match = compiled.catalog.match(host) if host else None
        return origin if match is not None and match.platform == platform else None

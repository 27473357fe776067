"""What a refused user sees: the block page, the JSON 403, the login request (407), the
login lock (429) and the refusals that are not access decisions (403, 421, 400).

Texts live in ``proxy/locales/gateway.yaml`` (en, lv, sv, sq); the language comes from
the request's Accept-Language. The block page is an autoescaped Jinja2 template.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from mitmproxy import http

from proxy.i18n import Translator
from proxy.policy.decide import Decision, Rule, Subject
from proxy.policy.model import Policy, Window

_TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # templates ship with the code: no stat() per block page
    )


@cache
def _block_template() -> jinja2.Template:
    return _environment().get_template("block.html")


@cache
def _login_template() -> jinja2.Template:
    return _environment().from_string(
        '<!doctype html><html lang="{{ lang }}"><meta charset="utf-8">'
        "<title>{{ title }}</title><h1>{{ title }}</h1><p>{{ message }}</p></html>"
    )


@dataclass(frozen=True)
class Explanation:
    """The facts of a refusal, localized."""

    title: str
    why: str
    guideline_id: str | None
    guideline_title: str | None
    guideline_text: str | None
    request_url: str | None

    @property
    def message(self) -> str:
        return f"{self.title}. {self.why}"


def format_windows(windows: list[Window], t: Translator) -> str:
    """``Mon–Fri 00:00–08:30, Sat–Sun`` in the user's language."""
    names = t("weekdays").split(",")
    out = []
    for window in windows:
        days = sorted(window.days)
        runs: list[tuple[int, int]] = []
        for day in days:
            if runs and runs[-1][1] == day - 1:
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        day_text = ", ".join(
            names[a] if a == b else f"{names[a]}–{names[b]}" for a, b in runs
        )
        end = f"{window.end:%H:%M}"
        if window.end.hour == 23 and window.end.minute == 59:
            end = "24:00"
        if f"{window.start:%H:%M}" == "00:00" and end == "24:00":
            out.append(day_text)
        else:
            out.append(f"{day_text} {window.start:%H:%M}–{end}")
    return "; ".join(out)


def request_access_url(service_url: str, platform: str, url: str) -> str:
    return f"{service_url.rstrip('/')}/access/request?" + urlencode(
        {"platform": platform, "url": url}
    )


def explain(
    policy: Policy, decision: Decision, lang: str, service_url: str, url: str
) -> Explanation:
    """Localized title, reason and guideline for a refused decision."""
    # Everyone-blocked platforms cannot be granted: no request form.
    request_url = (None if decision.rule is Rule.deny
                   else request_access_url(service_url, decision.platform, url))
    if _explained_for[0] is not policy:  # a reloaded policy: start over, keep no old one
        _explained.clear()
        _explained_for[0] = policy
    key = (decision.rule, decision.platform, decision.role, bool(decision.grant), lang)
    explanation = _explained.get(key)
    if explanation is None:
        explanation = _explain(policy, decision, lang)
        if len(_explained) < 1024:
            _explained[key] = explanation
    return dataclasses.replace(explanation, request_url=request_url)


_explained: dict[tuple[object, ...], Explanation] = {}
"""Explanations (without their request URL) of the policy in ``_explained_for``."""
_explained_for: list[Policy | None] = [None]


def _explain(policy: Policy, decision: Decision, lang: str) -> Explanation:
    t = Translator("gateway", lang)
    platform_id = decision.platform
    known = policy.platforms.get(platform_id)
    platform = known.name if known else platform_id
    role_name = (
        policy.roles[decision.role].name.get(t.lang)
        if decision.role and decision.role in policy.roles
        else decision.role or ""
    )
    guideline_id = "access"
    if decision.rule is Rule.deny:
        title = t("title_blocked", platform=platform)
        reason = next((d.reason.get(t.lang) for d in policy.deny if d.platform == platform_id), "")
        why = t("why_deny", platform=platform, reason=reason)
    elif decision.rule is Rule.read_only:
        title = t("title_read_only", platform=platform)
        why = (t("why_grant", platform=platform) if decision.grant
               else t("why_read_only", platform=platform, role=role_name))
    elif decision.rule is Rule.media:
        title = t("title_media", platform=platform)
        why = t("why_media", platform=platform, role=role_name)
        guideline_id = "network-load"
    elif decision.rule is Rule.no_role:
        title = t("title_blocked", platform=platform)
        why = t("why_no_role", platform=platform)
    elif decision.rule is Rule.window and decision.role in policy.roles:
        title = t("title_blocked", platform=platform)
        rule = policy.roles[decision.role].platforms.get(platform_id)
        windows = format_windows(rule.windows, t) if rule else ""
        why = t("why_window", platform=platform, role=role_name, windows=windows)
    else:
        title = t("title_blocked", platform=platform)
        why = t("why_role", platform=platform, role=role_name)
    guideline = policy.guidelines.get(guideline_id)
    return Explanation(
        title=title,
        why=why,
        guideline_id=guideline_id if guideline else None,
        guideline_title=guideline.title.get(t.lang) if guideline else None,
        guideline_text=guideline.text.get(t.lang) if guideline else None,
        request_url=None,
    )


_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action *; base-uri 'none'",
}


def block_page(
    explanation: Explanation,
    decision: Decision,
    subject: Subject,
    lang: str,
    policy_version: str,
    url: str,
    policy: Policy | None = None,
) -> http.Response:
    """The HTML block page; with ``policy``, roles and the rule by name, not id."""
    t = Translator("gateway", lang)
    roles = sorted(subject.roles)
    if policy is not None:
        roles = sorted(policy.roles[r].name.get(t.lang) if r in policy.roles else r
                       for r in roles)
    details = [
        (t("label_user"), subject.user or t("anonymous")),
        (t("label_roles"), ", ".join(roles) or "–"),
        (t("label_rule"), t("rule_" + str(decision.rule).replace("-", "_"))),
        (t("label_address"), url),
        (t("label_policy"), policy_version),
    ]
    html = _block_template().render(
        lang=t.lang,
        t=t,
        title=explanation.title,
        why=explanation.why,
        guideline=(
            {"title": explanation.guideline_title, "text": explanation.guideline_text}
            if explanation.guideline_title else None
        ),
        request_url=explanation.request_url,
        details=details,
    )
    return http.Response.make(
        403, html.encode(),
        {"Content-Type": "text/html; charset=utf-8", "Content-Language": t.lang, **_HEADERS},
    )


def block_json(explanation: Explanation, decision: Decision, lang: str) -> http.Response:
    body = {
        "error": "blocked",
        "platform": decision.platform,
        "action": str(decision.action),
        "rule": str(decision.rule),
        "reason": decision.reason,
        "message": explanation.message,
        "guideline": explanation.guideline_title,
        "guideline_id": explanation.guideline_id,
        "request_access": explanation.request_url,
    }
    return http.Response.make(
        403, json.dumps(body, ensure_ascii=False).encode(),
        {"Content-Type": "application/json; charset=utf-8", "Content-Language": lang,
         "Cache-Control": "no-store"},
    )


def login_required(
    realm: str, reason: str, lang: str, html: bool, schemes: Sequence[str] = ("basic",)
) -> http.Response:
    """407 asking the browser for the proxy login (``reason``: login-required|login-failed),
    one ``Proxy-Authenticate`` per scheme (``negotiate``, ``basic``) in the given order."""
    t = Translator("gateway", lang)
    message = t("login_failed" if reason == "login-failed" else "login_required")
    safe_realm = realm.replace("\\", "\\\\").replace('"', '\\"')
    challenges = {
        "negotiate": "Negotiate",
        "basic": f'Basic realm="{safe_realm}", charset="UTF-8"',
    }
    if html:
        body = _login_template().render(lang=t.lang, title=t("login_title"), message=message)
        content = ("text/html; charset=utf-8", body.encode())
    else:
        content = ("text/plain; charset=utf-8", f"{t('login_title')}. {message}\n".encode())
    response = http.Response.make(
        407, content[1],
        {"Content-Type": content[0], "Content-Language": t.lang, "Cache-Control": "no-store"},
    )
    for scheme in schemes:
        response.headers.add("Proxy-Authenticate", challenges[scheme])
    return response


def refused_json(status: int, error: str, message: str, lang: str) -> http.Response:
    """A JSON refusal that is not an access decision (``message``: a gateway.yaml key)."""
    t = Translator("gateway", lang)
    body = {"error": error, "message": t(message)}
    return http.Response.make(
        status, json.dumps(body, ensure_ascii=False).encode(),
        {"Content-Type": "application/json; charset=utf-8", "Content-Language": t.lang,
         "Cache-Control": "no-store"},
    )


def login_limited(seconds: int, lang: str) -> http.Response:
    """429 after too many wrong passwords; the password is not even tried."""
    t = Translator("gateway", lang)
    body = {"error": "login-limited", "retry_after": seconds,
            "message": t("login_limited", seconds=seconds)}
    return http.Response.make(
        429, json.dumps(body, ensure_ascii=False).encode(),
        {"Content-Type": "application/json; charset=utf-8", "Content-Language": t.lang,
         "Cache-Control": "no-store", "Retry-After": str(seconds)},
    )

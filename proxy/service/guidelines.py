"""``GET /guidelines?lang=``: the policy's guideline clauses as a page, in one language.

The compose guard's card links each finding here (``#rule-<rule id>``): every clause
carries an anchor for each compliance rule that names it, so a link lands on the clause
the finding is about, highlighted. Open to everyone, like ``/``: staff read it before
they log in, and it holds nothing but the policy's public text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from proxy.i18n import LANGUAGES, Translator
from proxy.service import keys
from proxy.service.pages import language, render

routes = web.RouteTableDef()

_PLACEHOLDER = re.compile(r"\{\w+\}")  # "{until}" in a message: filled in per finding
NATIVE = {"en": "English", "lv": "Latviešu", "sv": "Svenska", "sq": "Shqip"}


@dataclass(frozen=True)
class Clause:
    id: str
    title: str
    text: str
    rules: tuple[str, ...]  # the compliance rules that point here
    marks: tuple[str, ...]  # what those rules say in a draft, in the page's language


@routes.get("/guidelines")
async def guidelines(request: web.Request) -> web.Response:
    lang = language(request)
    policy = request.app[keys.POLICY].current.loaded.policy
    rules: dict[str, list[str]] = {}
    marks: dict[str, list[str]] = {}
    for rule_id, rule in sorted(policy.compliance.rules.items()):
        if rule.guideline:
            rules.setdefault(rule.guideline, []).append(rule_id)
            said = _PLACEHOLDER.sub("…", rule.message.get(lang))
            marks.setdefault(rule.guideline, []).append(said)
    clauses = [
        Clause(gid, g.title.get(lang), g.text.get(lang), tuple(rules.get(gid, ())),
               tuple(marks.get(gid, ())))
        for gid, g in policy.guidelines.items()
    ]
    return render(
        request, "guidelines.html", g=Translator("guidelines", lang), clauses=clauses,
        languages=[(code, NATIVE[code]) for code in LANGUAGES],
        institution=policy.institution.name, policy_version=policy.version,
        policy_id=policy.name,
    )


def setup(app: web.Application) -> None:
    app.add_routes(routes)

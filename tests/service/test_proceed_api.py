"""``POST /api/v1/proceed`` and the ``/proceed`` page against the real service (SQLite and
PostgreSQL): who may ask, what is refused (naming the field), what is recorded (never the
text), and that an allowance is issued only where the policy allows it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from proxy.compliance.texthash import text_hash
from proxy.service.proceed import MAX_REPORTS_PER_HOUR
from proxy.store import allowances, audit
from tests.support.service import Service, running_service

PHONE = "Zvaniet man uz +371 29 123 456 rīt"
SECRET = "Šis ir SLEPENI dati"  # classified: report and review only
TOKEN = "gateway-token-for-proceed-tests"


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url, gateway_token=SecretStr(TOKEN)) as s:
        yield s


async def _proceed(svc: Service, body: Any, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(
            svc.url + "/api/v1/proceed", json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


def _gateway(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "X-Sargs-User": user}


async def test_who_may_ask(svc: Service) -> None:
    body = {"text": PHONE, "platform": "x", "way": "justify", "reason": "public-number"}
    # nobody: 401; a page naming a user without the gateway's token: still nobody
    assert (await _proceed(svc, body))[0] == 401
    assert (await _proceed(svc, body, **{"X-Sargs-User": "anna"}))[0] == 401
    wrong = {"Authorization": "Bearer not-the-token", "X-Sargs-User": "anna"}
    assert (await _proceed(svc, body, **wrong))[0] == 401
    # the gateway's token without a user: 400
    status, _ = await _proceed(svc, body, Authorization=f"Bearer {TOKEN}")
    assert status == 400
    # HTTP Basic: the signed-in user, whatever a header claims
    status, answer = await _proceed(svc, body, **svc.basic("anna"), **{"X-Sargs-User": "ada"})
    assert status == 200, answer
    assert answer["allowance"]["user"] == "anna"
    # the gateway names the user it identified
    status, answer = await _proceed(svc, body, **_gateway("carl"))
    assert status == 200
    assert answer["allowance"]["user"] == "carl"
    assert [a.user for a in allowances.active(svc.store)] == ["anna", "carl"]


async def test_session_needs_the_csrf_token(svc: Service) -> None:
    body = {"text": PHONE, "platform": "x", "way": "justify", "reason": "public-number"}
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        r = await anna.session.post(svc.url + "/api/v1/proceed", json=body,
                                    headers={"Origin": svc.url})
        assert r.status == 403
        await anna.get("/proceed")
        r = await anna.session.post(svc.url + "/api/v1/proceed", json=body,
                                    headers={"Origin": svc.url, "X-CSRF-Token": anna.csrf})
        assert r.status == 200
    assert audit.count(svc.store, kind="post-override") == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"text": PHONE, "platform": "x", "way": "acknowledge"}, "way"),
    ({"text": PHONE, "platform": "x", "way": "justify"}, "reason"),
    ({"text": PHONE, "platform": "x", "way": "justify", "reason": " "}, "reason"),
    # (rules named: during working hours a personal post also has a working-hours warning)
    ({"text": "The library opens at ten.", "platform": "x", "way": "acknowledge",
      "rules": ["offensive"]}, "text"),
    ({"text": PHONE, "platform": "myspace", "way": "justify", "reason": "x"}, "platform"),
    ({"text": PHONE, "platform": "x", "way": "review"}, "way"),
    ({"text": PHONE, "platform": "x", "way": "justify", "reason": "r" * 501}, "reason"),
    ({"text": PHONE, "platform": "x", "way": "justify", "reason": "x", "extra": 1}, "extra"),
    ({"text": PHONE, "platform": "x", "way": "justify", "reason": "x",
      "rules": ["classified"]}, "text"),
])
async def test_refusals_name_the_field_and_issue_nothing(
        svc: Service, body: dict[str, Any], field: str) -> None:
    status, answer = await _proceed(svc, body, **_gateway("carl"))
    assert status == 422, answer
    assert answer["details"][0]["field"] == field
    assert allowances.active(svc.store) == []
    assert audit.count(svc.store, kind="post-override") == 0


async def test_a_refusal_tells_the_guard_what_to_say_in_the_users_language(
        svc: Service) -> None:
    body = {"text": SECRET, "platform": "x", "way": "justify", "reason": "public", "lang": "sv"}
    status, answer = await _proceed(svc, body, **_gateway("carl"))
    assert status == 422
    assert answer["details"] == [{"field": "way", "message":
                                  "the policy does not allow 'justify' past classified"}]
    assert answer["message"].startswith("Policyn tillåter inte den vägen förbi: ")
    assert "classified" not in answer["message"]  # the rule by its name, not its id


async def test_report_where_nobody_may_pass_issues_nothing(svc: Service) -> None:
    status, answer = await _proceed(svc, {"text": SECRET, "platform": "x", "way": "report",
                                          "rules": ["classified"], "reason": "a film's title"},
                                    **_gateway("carl"))
    assert status == 200
    assert answer == {"allowance": None, "expires": None, "way": "report",
                      "rules": ["classified"], "reported": True}
    assert allowances.active(svc.store) == []
    (entry,) = audit.query(svc.store, kind="false-positive")
    assert entry.details["text_hash"] == text_hash(SECRET)
    assert "SLEPENI" not in json.dumps(dict(entry.details))


async def test_reports_of_wrong_findings_are_limited_per_user(svc: Service) -> None:
    """Each report is an audit entry: one user cannot fill the log with them."""
    for _ in range(MAX_REPORTS_PER_HOUR):
        audit.append(svc.store, audit.Kind.false_positive, actor="carl", user="carl",
                     platform="x", details={"rules": ["classified"]})
    body = {"text": SECRET, "platform": "x", "way": "report"}
    async with aiohttp.ClientSession() as s, s.post(
            svc.url + "/api/v1/proceed", json=body, headers=_gateway("carl")) as r:
        assert r.status == 429
        assert 0 < int(r.headers["Retry-After"]) <= 3600
        assert "reports" in (await r.json())["error"]
    assert audit.count(svc.store, kind="false-positive", user="carl") == MAX_REPORTS_PER_HOUR
    # another user reports as before
    status, answer = await _proceed(svc, body, **_gateway("dina"))
    assert status == 200
    assert answer["reported"] is True


async def test_the_page_records_a_reason_for_a_post_the_guard_never_saw(svc: Service) -> None:
    async with svc.client() as anna:
        r = await anna.get("/proceed?platform=x")
        assert r.status == 200  # redirected to the login page first
        await anna.login("anna", "anna-pw")
        r = await anna.get("/proceed?platform=x&lang=lv")
        assert r.status == 200
        assert "Publicēt, neskatoties uz atradumu" in anna.last_page
        assert 'value="x" selected' in anna.last_page
        r = await anna.post_form("/proceed?lang=lv", {
            "platform": "x", "text": PHONE, "way": "acknowledge", "reason": "", "note": ""})
        assert r.status == 422  # a phone number (block) cannot be acknowledged away
        assert "Politika neļauj šādi apiet: Personas dati" in anna.last_page  # Latvian, by name
        assert "does not allow" not in anna.last_page
        r = await anna.post_form("/proceed?lang=lv", {
            "platform": "x", "text": PHONE, "way": "justify", "reason": "other", "note": ""})
        assert r.status == 422
        assert "Norādiet iemeslu" in anna.last_page
        r = await anna.post_form("/proceed?lang=lv", {
            "platform": "x", "text": PHONE, "way": "justify", "reason": "other",
            "note": "Ministra preses sekretāra numurs"})
        assert r.status == 200
        assert 'id="proceed-done"' in anna.last_page
        assert "Publicējiet tieši šo tekstu" in anna.last_page
        assert PHONE not in anna.last_page  # the form is emptied
    (allowed,) = allowances.active(svc.store)
    assert (allowed.user, allowed.platform) == ("anna", "x")
    assert allowed.text_hash == text_hash(PHONE)
    (entry,) = audit.query(svc.store, kind="post-override")
    assert entry.details["reason"] == "Ministra preses sekretāra numurs"
    assert entry.details["reason_listed"] is False

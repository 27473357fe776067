"""Proceed with a reason, end to end without a browser: a real service (SQLite), a real
gateway following its bundle, the stand-in platform. The gateway lets exactly the text
the user proceeded with through once; a changed text, and the same text again, are
refused; the audit log records who, which rules, the way and the reason, and the text's
hash, never the text. Simulation refuses nothing and records what it would have done."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from pydantic import SecretStr

from proxy.compliance.texthash import text_hash
from proxy.gateway.addons import make_addons
from proxy.gateway.metrics import GatewayMetrics
from proxy.gateway.sync import GatewaySync
from proxy.runtime import PolicyState
from proxy.settings import Settings
from proxy.store import audit
from tests.integration.test_refused_post import _eventually
from tests.support.gateway import Clock, Gateway, copy_policy, fake_site, running_gateway
from tests.support.service import running_service

PHONE = "Zvaniet man uz +371 29 123 456 rīt"  # personal data: refused
CHANGED = "Zvaniet man uz +371 29 123 457 rīt"
TOKEN = "gateway-token-for-this-test"
USERS = {"carl": ("carl-pw", ["communicator"])}
LOGIN = {"Proxy-Authorization": "Basic " + base64.b64encode(b"carl:carl-pw").decode()}
POST_URL = "https://x.com/i/api/graphql/abc/CreateTweet"


async def _post(session: aiohttp.ClientSession, gw: Gateway, text: str) -> tuple[int, Any]:
    body = json.dumps({"variables": {"tweet_text": text}}).encode()
    async with session.post(POST_URL, data=body, proxy=gw.proxy_url, ssl=gw.ssl_context(),
                            proxy_headers=LOGIN,
                            headers={"Content-Type": "application/json",
                                     "Accept": "application/json"}) as resp:
        return resp.status, await resp.json(content_type=None)


async def _proceed(session: aiohttp.ClientSession, gw: Gateway, **body: Any
                   ) -> tuple[int, Any]:
    async with session.post("https://x.com/__sargs/api/v1/proceed", json=body,
                            proxy=gw.proxy_url, ssl=gw.ssl_context(), proxy_headers=LOGIN,
                            headers={"Origin": "https://x.com"}) as resp:
        return resp.status, await resp.json(content_type=None)


def _make(settings: Settings) -> Any:
    def make(_: Settings, state: PolicyState, **kw: Any) -> list[object]:
        return make_addons(settings, state, sync=True, **kw)
    return make


async def test_proceed_with_a_reason_lets_exactly_that_text_through_once(
        tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    async with running_service(tmp_path / "service", database,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(var_dir=tmp_path / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_id="gw-proceed",
                            gateway_metrics_port=0)
        async with (
            fake_site() as site,
            running_gateway(tmp_path, site.port, users=USERS, make=_make(settings),
                            clock=Clock(datetime.now(UTC))) as gw,
            aiohttp.ClientSession() as session,
        ):
            status, refused = await _post(session, gw, PHONE)
            assert status == 403
            assert refused["ways"] == ["justify", "report", "review"]
            assert refused["proceed"].startswith(svc.url + "/proceed?platform=x")
            assert "with a reason" in refused["message"]

            # a way the policy does not allow past a phone number: named, nothing issued
            status, answer = await _proceed(session, gw, text=PHONE, way="acknowledge",
                                            rules=["personal-data"])
            assert status == 422
            assert answer["details"][0]["field"] == "way"
            status, answer = await _proceed(session, gw, text=PHONE, way="justify",
                                            rules=["personal-data"])
            assert (status, answer["details"][0]["field"]) == (422, "reason")

            status, answer = await _proceed(
                session, gw, text=PHONE, way="justify", rules=["personal-data"],
                reason="public-number", platform="facebook")  # the host decides: x
            assert status == 200, answer
            assert answer["allowance"]["platform"] == "x"
            assert answer["allowance"]["text_hash"] == text_hash(PHONE)

            # a changed text is refused, and does not use the allowance up
            assert (await _post(session, gw, CHANGED))[0] == 403
            # the same text, with the spacing a browser may change, goes through once
            status, _ = await _post(session, gw, "  " + PHONE.replace(" ", "  ") + "\n")
            assert status == 200
            assert len(site.seen) == 1
            assert (await _post(session, gw, PHONE))[0] == 403
            assert len(site.seen) == 1

            def recorded() -> bool:  # the gateway reports both as they happen, not at once
                return (bool(audit.query(svc.store, kind="allowance-use"))
                        and len(audit.query(svc.store, kind="block")) >= 3)

            await _eventually(recorded, within=30)
        entries = audit.query(svc.store, newest_first=False)
        override = [e for e in entries if e.kind == "post-override"]
        assert len(override) == 1
        assert override[0].user == "carl"
        assert override[0].details["way"] == "justify"
        assert override[0].details["reason"] == "public-number"
        assert override[0].details["rules"] == ["personal-data"]
        assert override[0].details["text_hash"] == text_hash(PHONE)
        (use,) = [e for e in entries if e.kind == "allowance-use"]
        assert use.details["allowance"] == answer["allowance"]["id"]
        assert use.actor == "gw-proceed"
        blocks = [e for e in entries if e.kind == "block"]
        assert len(blocks) == 3  # the first post, the changed one, the second of the same
        everything = json.dumps([[e.kind, dict(e.details)] for e in entries])
        assert "123 456" not in everything
        assert "123 457" not in everything
        assert "Zvaniet" not in everything


async def test_report_on_a_finding_nobody_may_pass_records_it_and_lets_nothing_through(
        tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    text = "Šis ir SLEPENI dati"  # classified: block, ways report and review only
    async with running_service(tmp_path / "service", database,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(var_dir=tmp_path / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_metrics_port=0)
        async with (
            fake_site() as site,
            running_gateway(tmp_path, site.port, users=USERS, make=_make(settings),
                            clock=Clock(datetime.now(UTC))) as gw,
            aiohttp.ClientSession() as session,
        ):
            status, refused = await _post(session, gw, text)
            assert status == 403
            assert "justify" not in refused["ways"]
            # a plain form post (a page navigation) gets the refusal as a page, in lv
            async with session.post(
                    POST_URL, data=json.dumps({"variables": {"tweet_text": text}}),
                    proxy=gw.proxy_url, ssl=gw.ssl_context(), proxy_headers=LOGIN,
                    headers={"Content-Type": "application/json", "Accept": "text/html",
                             "Sec-Fetch-Dest": "document", "Accept-Language": "lv"}) as r:
                assert r.status == 403
                assert r.headers["Content-Type"].startswith("text/html")
                page = await r.text()
            assert "Sargs nenosūtīja šo ierakstu" in page
            assert "ziņot par kļūdainu atradumu" in page
            assert f'href="{svc.url}/proceed?platform=x"' in page
            assert "SLEPENI" not in page
            status, answer = await _proceed(session, gw, text=text, way="report",
                                            rules=["classified"],
                                            reason="it is the name of a film")
            assert status == 200, answer
            assert answer["allowance"] is None
            assert answer["reported"] is True
            assert (await _post(session, gw, text))[0] == 403
            assert site.seen == []
        (entry,) = audit.query(svc.store, kind="false-positive")
        assert entry.user == "carl"
        assert "classified" in entry.details["rules"]
        assert "SLEPENI" not in json.dumps(dict(entry.details))


async def test_simulation_shows_and_records_but_never_refuses(tmp_path: Path) -> None:
    example = copy_policy(tmp_path)
    extra = {"compliance": {"simulate": {"platforms": ["x"]}}}
    (example / "simulate.yaml").write_text(yaml.safe_dump(extra))
    state = PolicyState(example)
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    async with running_service(tmp_path / "service", database, policy=state,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(policy=example, var_dir=tmp_path / "gateway",
                            service_url=svc.url, gateway_token=SecretStr(TOKEN),
                            gateway_metrics_port=0)
        async with (
            fake_site() as site,
            running_gateway(tmp_path, site.port, users=USERS, make=_make(settings),
                            policy=state, clock=Clock(datetime.now(UTC))) as gw,
            aiohttp.ClientSession() as session,
        ):
            status, _ = await _post(session, gw, PHONE)
            assert status == 200
            assert len(site.seen) == 1  # the platform got it
            members = [m for a in gw.addons for m in getattr(a, "addons", [a])]
            metrics = next(m for m in members if isinstance(m, GatewayMetrics))
            scraped = metrics.registry_text()
            assert 'rule="personal-data",severity="simulated-block"' in scraped
            assert 'rule="personal-data",severity="block"' not in scraped

            def recorded() -> bool:
                return bool(audit.query(svc.store, kind="post-simulated"))

            await _eventually(recorded, within=30)
        (entry,) = audit.query(svc.store, kind="post-simulated")
        assert (entry.user, entry.platform) == ("carl", "x")
        assert entry.details["would"] == "block"
        assert "personal-data" in entry.details["rules"]
        assert audit.query(svc.store, kind="block") == []
        assert "123 456" not in json.dumps(dict(entry.details))


async def test_other_gateways_learn_of_it_and_of_its_use_another_user_cannot_use_it(
        tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    people = {**USERS, "dave": ("dave-pw", ["communicator"])}
    dave = {"Proxy-Authorization": "Basic " + base64.b64encode(b"dave:dave-pw").decode()}
    async with running_service(tmp_path / "service", database,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(var_dir=tmp_path / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_metrics_port=0)
        other = GatewaySync(svc.url, tmp_path / "gw-2", token=TOKEN, gateway="gw-2")
        await other.start()
        try:
            async with (
                fake_site() as site,
                running_gateway(tmp_path, site.port, users=people, make=_make(settings),
                                clock=Clock(datetime.now(UTC))) as gw,
                aiohttp.ClientSession() as session,
            ):
                status, _ = await _proceed(session, gw, text=PHONE, way="justify",
                                           rules=["personal-data"], reason="public-number")
                assert status == 200
                await _eventually(lambda: len(other.allowances) == 1, within=20)

                body = json.dumps({"variables": {"tweet_text": PHONE}}).encode()
                async with session.post(POST_URL, data=body, proxy=gw.proxy_url,
                                        ssl=gw.ssl_context(), proxy_headers=dave,
                                        headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 403  # carl's permission is not dave's
                assert (await _post(session, gw, PHONE))[0] == 200
                assert len(site.seen) == 1
                # the use reaches the service, which tells every gateway: gone there too
                await _eventually(lambda: len(other.allowances) == 0, within=30)
        finally:
            await other.stop()

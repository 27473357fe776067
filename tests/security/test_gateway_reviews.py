"""The gateway's review path attacked from outside: a real mitmproxy with the Sargs add-ons
and the real service. A form on another site, a non-JSON body, a page naming another
platform or user, and a caller the gateway does not know get nothing stored in anyone's
name; what the page's own host sends is stored as the proven user, for the host's
platform."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from proxy.gateway.addons import make_addons
from proxy.runtime import PolicyState
from proxy.settings import Settings
from proxy.store import reviews as rv
from tests.support.gateway import Clock, fake_site, running_gateway
from tests.support.service import DEFAULT_USERS, running_service

TOKEN = "gateway-token-for-the-review-attacks"
PEOPLE = {**DEFAULT_USERS, "carl": ("carl-pw", ("communicator",), None, None)}
LOGIN = {"Proxy-Authorization": "Basic " + base64.b64encode(b"carl:carl-pw").decode()}
URL = "https://x.com/__sargs/api/v1/reviews"


async def test_review_path_from_outside(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    async with running_service(tmp_path / "service", database, people=PEOPLE,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(var_dir=tmp_path / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_metrics_port=0)

        def make(_: Settings, state: PolicyState, **kw: Any) -> list[object]:
            return make_addons(settings, state, sync=True, **kw)

        async with (
            fake_site() as site,
            running_gateway(tmp_path, site.port, users={"carl": ("carl-pw", ["communicator"])},
                            make=make, clock=Clock(datetime.now(UTC))) as gw,
            aiohttp.ClientSession() as s,
        ):
            async def post(body: bytes, **headers: str) -> tuple[int, Any]:
                async with s.post(URL, data=body, proxy=gw.proxy_url, ssl=gw.ssl_context(),
                                  proxy_headers=LOGIN, headers=headers) as r:
                    return r.status, await r.json(content_type=None)

            draft = json.dumps({"text": "Sveiki +371 29 123 456", "platform": "facebook",
                                "user": "peter"}).encode()
            # A form on another site (text/plain needs no preflight): refused.
            status, _ = await post(draft, **{"Content-Type": "text/plain"})
            assert status == 415
            # JSON from another origin (a page elsewhere, or a preflight-less attempt).
            status, _ = await post(draft, **{"Content-Type": "application/json",
                                             "Origin": "https://evil.example"})
            assert status == 403
            # The X-Sargs-User header from the page means nothing: the gateway sets it.
            status, _ = await post(draft, **{"Content-Type": "application/json",
                                             "Origin": "https://x.com", "X-Sargs-User": "peter",
                                             "Authorization": f"Bearer {TOKEN}"})
            assert status == 422  # 'user' is not a field: nothing is stored
            assert await asyncio.to_thread(rv.list_reviews, svc.store) == []

            body = json.dumps({"text": "Sveiki +371 29 123 456", "platform": "facebook",
                               "note": "?"}).encode()
            status, made = await post(body, **{"Content-Type": "application/json",
                                               "Origin": "https://x.com"})
            assert status == 201, made
            (stored,) = await asyncio.to_thread(rv.list_reviews, svc.store)
            assert (stored.user, stored.platform) == ("carl", "x")  # the host's, not the page's

            # Without a proxy login: the gateway asks for one; nothing reaches the service.
            with pytest.raises(aiohttp.ClientHttpProxyError) as refused:
                await s.post(URL, data=body, proxy=gw.proxy_url, ssl=gw.ssl_context(),
                             headers={"Content-Type": "application/json"})
            assert refused.value.status == 407
            # Another user's review id through the gateway: not found.
            other = await asyncio.to_thread(rv.submit, svc.store, svc.app[_key()],
                                            user="anna", platform="x", text="hello")
            async with s.get(f"{URL}/{other.id}", proxy=gw.proxy_url, ssl=gw.ssl_context(),
                             proxy_headers=LOGIN) as r:
                assert r.status == 404
            assert len(await asyncio.to_thread(rv.list_reviews, svc.store)) == 2
        assert site.seen == []  # the platform never saw any of it


def _key() -> Any:
    from proxy.service.reviews import REVIEW_KEY

    return REVIEW_KEY

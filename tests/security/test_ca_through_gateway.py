"""Issue 12: the constrained CA works in the real gateway: mitmproxy, given the CA
``sargs run`` makes, intercepts catalog hosts with certificates that a client trusting only
that CA accepts (so they fall within its name constraints)."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import aiohttp
import pytest

from proxy import ca
from proxy.runtime import PolicyState
from tests.support.gateway import EXAMPLE_POLICY, fake_site, running_gateway

LOGIN = {"Proxy-Authorization": "Basic " + base64.b64encode(b"eve:pw").decode()}


@pytest.mark.parametrize("url", ["https://www.linkedin.com/", "https://x.com/home"])
async def test_the_gateway_signs_catalog_hosts_within_the_constraints(
    tmp_path: Path, url: str
) -> None:
    policy = PolicyState(EXAMPLE_POLICY).current
    made = ca.ensure_ca(tmp_path / "mitmproxy", policy.loaded.policy.institution.name,
                        policy.catalog.domains())
    only_ours = ssl.create_default_context(cafile=str(made.cert_path))
    async with fake_site() as site, running_gateway(
        tmp_path, site.port, users={"eve": ("pw", ["intern"])}
    ) as gw, aiohttp.ClientSession() as session:
        assert gw.ca_cert == made.cert_path
        async with session.get(url, proxy=gw.proxy_url, ssl=only_ours, proxy_headers=LOGIN,
                               headers={"Accept": "text/html"}) as r:
            # Any answer (the page, or the block page for a blocked role) means OpenSSL
            # accepted the chain and its name constraints.
            assert r.status in (200, 403)
    in_use = ca.read_cert(tmp_path / "mitmproxy")  # mitmproxy kept ours, made none of its own
    assert in_use is not None
    assert ca.permitted_domains(in_use) == ca.permitted_domains(
        ca.read_cert(made.cert_path.parent) or in_use)
    assert "Sargs – Example Ministry interception CA" in in_use.subject.rfc4514_string()

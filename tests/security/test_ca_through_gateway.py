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


async def test_install_ca_makes_the_constrained_ca_when_the_institution_gives_none(
    tmp_path: Path,
) -> None:
    """What ``sargs run`` and ``sargs run --only gateway`` both call: without
    SARGS_CA_CERT/SARGS_CA_KEY the gateway's CA is Sargs' own, constrained to the catalog,
    made once and kept (browsers that trust it keep trusting it); the gateway then signs
    with it, not with a CA of mitmproxy's."""
    from proxy.gateway.addons import install_ca, mitmproxy_options
    from proxy.settings import Settings

    policy = PolicyState(EXAMPLE_POLICY).current
    settings = Settings(var_dir=tmp_path)
    confdir = tmp_path / "mitmproxy"
    trusted = install_ca(settings, confdir, policy)
    made = ca.read_cert(confdir)
    assert made is not None
    assert "Sargs – Example Ministry interception CA" in made.subject.rfc4514_string()
    assert ca.permitted_domains(made) == sorted(set(policy.catalog.domains()))
    assert install_ca(settings, confdir, policy) == trusted  # kept at the next start
    assert ca.fingerprint(ca.read_cert(confdir) or made) == ca.fingerprint(made)
    # Certificates carry only the host asked for, whatever the connection strategy.
    assert mitmproxy_options(settings, confdir)["upstream_cert"] is False

    only_ours = ssl.create_default_context(cafile=str(trusted))
    async with (
        fake_site() as site,
        running_gateway(tmp_path, site.port, users={"eve": ("pw", ["intern"])}) as gw,
        aiohttp.ClientSession() as session,
        session.get("https://www.linkedin.com/", proxy=gw.proxy_url, ssl=only_ours,
                    proxy_headers=LOGIN, headers={"Accept": "text/html"}) as r,
    ):
        assert r.status == 200

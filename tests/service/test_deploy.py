"""The deployment kit the service hands out: PAC file, CA page and CA downloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256
from mitmproxy.certs import CertStore

from proxy.service import deploy
from proxy.service.app import create_app
from proxy.settings import Settings


def make_ca(confdir: Path) -> Path:
    """The CA exactly as the gateway (mitmproxy) writes it into VAR_DIR/mitmproxy."""
    CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / "mitmproxy-ca-cert.pem"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path,
        gateways=["gw1.example.gov.lv:3128", "gw2.example.gov.lv:3128"],
        service_url="https://sargs.example.gov.lv",
    )


@pytest.fixture
async def client(aiohttp_client, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


async def test_pac_sends_catalog_domains_through_the_gateways_in_order(client: TestClient) -> None:
    resp = await client.get("/proxy.pac")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/x-ns-proxy-autoconfig")
    body = await resp.text()
    assert "function FindProxyForURL(url, host)" in body
    route = "PROXY gw1.example.gov.lv:3128; PROXY gw2.example.gov.lv:3128; DIRECT"
    assert f'var SARGS_ROUTE = "{route}";' in body
    for domain in ("facebook.com", "fbcdn.net", "x.com", "social.vivaldi.net", "draugiem.lv"):
        assert f'"{domain}"' in body
    assert '"vivaldi.net"' not in body  # only the Mastodon instance, not its parent domain
    assert "dnsDomainIs(host, \".\" + domain)" in body
    assert body.rstrip().endswith('return "DIRECT";\n}'.rstrip())


async def test_wpad_dat_is_the_same_file(client: TestClient) -> None:
    pac = await (await client.get("/proxy.pac")).text()
    resp = await client.get("/wpad.dat")
    assert resp.headers["Content-Type"].startswith("application/x-ns-proxy-autoconfig")
    assert await resp.text() == pac


def test_pac_default_is_the_local_gateway(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, gateway_port=3129)
    assert deploy.gateways_for(settings, "sargs.local") == ["127.0.0.1:3129"]
    wildcard = Settings(var_dir=tmp_path, gateway_host="0.0.0.0", gateway_port=3129)
    assert deploy.gateways_for(wildcard, "sargs.example.lv") == ["sargs.example.lv:3129"]


@pytest.mark.parametrize(
    ("lang", "title", "section"),
    [
        ("en", "Trust the Sargs gateway certificate", "Download the certificate"),
        ("lv", "Uzticieties Sargs vārtejas sertifikātam", "Lejupielādēt sertifikātu"),
        ("sv", "Lita på Sargs-gatewayens certifikat", "Ladda ner certifikatet"),
        ("sq", "Besoni certifikatën e portës Sargs", "Shkarkoni certifikatën"),
    ],
)
async def test_ca_page_speaks_four_languages(
    client: TestClient, settings: Settings, lang: str, title: str, section: str
) -> None:
    make_ca(settings.var_dir / "mitmproxy")
    resp = await client.get("/ca", headers={"Accept-Language": f"{lang},en;q=0.5"})
    assert resp.status == 200
    assert resp.headers["Content-Language"] == lang
    html = await resp.text()
    assert f'<html lang="{lang}">' in html
    assert f"<title>{title}</title>" in html
    assert section in html
    # Instructions for every system and for Firefox's own store.
    for needle in (
        "certutil -addstore -f Root sargs-ca.crt",
        "security add-trusted-cert",
        "update-ca-certificates",
        "trust anchor",
        "security.enterprise_roots.enabled",
        "&#34;Certificates&#34;",
        "https://sargs.example.gov.lv/proxy.pac",
    ):
        assert needle in html
    same = await (await client.get(f"/ca?lang={lang}")).text()
    assert f"<title>{title}</title>" in same


async def test_ca_downloads_match_the_gateway_ca(client: TestClient, settings: Settings) -> None:
    pem_path = make_ca(settings.var_dir / "mitmproxy")
    expected = x509.load_pem_x509_certificate(pem_path.read_bytes())

    pem = await client.get("/ca.pem")
    assert pem.status == 200
    assert pem.headers["Content-Type"] == "application/x-pem-file"
    assert 'filename="sargs-ca.pem"' in pem.headers["Content-Disposition"]
    assert x509.load_pem_x509_certificate(await pem.read()) == expected

    der = await client.get("/ca.crt")
    assert der.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(await der.read()) == expected

    html = await (await client.get("/ca?lang=en")).text()
    fingerprint = re.search(r'id="fingerprint">([0-9A-F:]+)<', html)
    assert fingerprint is not None
    assert fingerprint.group(1).replace(":", "").lower() == expected.fingerprint(SHA256()).hex()
    # The private key is never offered.
    assert "PRIVATE KEY" not in (await pem.text())


async def test_institution_ca_is_served_instead(tmp_path: Path, aiohttp_client) -> None:
    own = make_ca(tmp_path / "institution")
    client = await aiohttp_client(create_app(Settings(var_dir=tmp_path / "var", ca_cert=own)))
    body = await (await client.get("/ca.pem")).read()
    assert x509.load_pem_x509_certificate(body) == x509.load_pem_x509_certificate(own.read_bytes())
    html = await (await client.get("/ca?lang=lv")).text()
    assert "Šī ir jūsu iestādes pašas CA." in html


async def test_missing_ca_is_explained_not_an_error(client: TestClient) -> None:
    resp = await client.get("/ca?lang=sv")
    assert resp.status == 200
    assert "Gatewayen har inte skapat sitt certifikat ännu." in await resp.text()
    assert (await client.get("/ca.pem")).status == 404
    assert (await client.get("/ca.crt")).status == 404

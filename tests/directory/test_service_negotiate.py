"""Kerberos sign-on on the service pages (real service on loopback, real KDC and slapd):
a ticket holder in the group mapped to ``approver`` reaches the approver pages without a
password; without a ticket the login page is a Negotiate challenge whose body is the form."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import pytest
import spnego

from proxy.runtime import PolicyState
from proxy.store import users
from tests.directory.test_gateway_negotiate import policy_with_groups
from tests.support.kdc import Kerberos
from tests.support.service import running_service
from tests.support.slapd import GROUPS, ROOT_DN, ROOT_PW, SUFFIX, Slapd


def header() -> str:
    ctx = spnego.client(hostname="127.0.0.1", service="HTTP")
    token = ctx.step()
    assert token is not None
    return "Negotiate " + base64.b64encode(token).decode()


async def test_negotiate_on_the_service_pages(
    tmp_path: Path, kdc: Kerberos, slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in kdc.env.items():
        monkeypatch.setenv(name, value)
    policy_dir = policy_with_groups(tmp_path)
    text = (policy_dir / "policy.yaml").read_text()
    mapping = f'    "cn=approvers,{GROUPS}": [approver, staff]\n'
    (policy_dir / "policy.yaml").write_text(text.replace("    experts: [expert]\n", mapping))
    slapd.add_group("approvers", [slapd.add_user("olga")])
    slapd.add_user("pavel")  # in no mapped group
    async with running_service(
        tmp_path, f"sqlite:///{tmp_path / 's.db'}", people={},
        policy=PolicyState(policy_dir), kerberos_realms=[kdc.name], ldap_url=slapd.url,
        ldap_base=SUFFIX, ldap_bind_dn=ROOT_DN, ldap_bind_password=ROOT_PW,
    ) as svc:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         headers={"Accept": "text/html"}) as web:
            page = await web.get(f"{svc.url}/approvals")  # → the login page, a challenge
            assert page.status == 401
            assert page.headers["WWW-Authenticate"] == "Negotiate"
            assert 'name="password"' in await page.text()  # the form is the fallback

            monkeypatch.setenv("KRB5CCNAME", kdc.add_user("olga"))
            signed = await web.get(f"{svc.url}/login?next=/approvals",
                                   headers={"Authorization": header()})
            assert signed.status == 200
            assert signed.url.path == "/approvals"  # signed on, no password
        olga = users.get_user(svc.store, "olga")
        assert olga is not None
        assert set(olga.roles) == {"approver", "staff"}  # the directory's, in the store

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         headers={"Accept": "text/html"}) as web:
            monkeypatch.setenv("KRB5CCNAME", kdc.add_user("pavel"))
            no_role = await web.get(f"{svc.url}/login", headers={"Authorization": header()})
            assert no_role.status == 200
            assert "no Sargs role" in await no_role.text()
            assert (await web.get(f"{svc.url}/approvals", allow_redirects=False)).status in (
                302, 303, 401)
        assert users.get_user(svc.store, "pavel") is None

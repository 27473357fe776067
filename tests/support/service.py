"""A real Sargs service on 127.0.0.1 with a real store, and a browser-like client for it.

    async with running_service(tmp_path, store_url, users=USERS) as svc:
        async with svc.client() as anna:
            await anna.login("anna", "pw")
            r = await anna.post_form("/api/v1/exceptions", {...})

``svc.client()`` keeps cookies like a browser, sends a same-origin ``Origin`` header on
POSTs (override with ``origin=``) and finds the CSRF token in the page it loaded last.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from proxy.runtime import PolicyState
from proxy.service import keys
from proxy.service.app import create_app
from proxy.settings import ROOT, Settings
from proxy.store import users
from proxy.store.db import Store, open_store

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
EXAMPLE_POLICY = ROOT / "policies" / "institutions" / "example"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')

# name: (password, roles, department, email)
DEFAULT_USERS: dict[str, tuple[str, tuple[str, ...], str | None, str | None]] = {
    "anna": ("anna-pw", ("staff",), "press", "anna@example.gov.lv"),
    "peter": ("peter-pw", ("staff", "approver"), None, "peter@example.gov.lv"),
    "rita": ("rita-pw", ("expert", "approver"), None, "rita@example.gov.lv"),
    "cora": ("cora-pw", ("communicator",), None, None),
    "hedda": ("hedda-pw", ("head",), None, None),
    "ada": ("ada-pw", ("admin",), None, None),
}


@dataclass
class Client:
    base: str
    session: aiohttp.ClientSession
    origin: str
    last_page: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.last_page)
        return found.group(1) if found else ""

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {"Accept": "text/html", **self.headers, **kwargs.pop("headers", {})}
        r = await self.session.get(self.base + path, headers=headers, **kwargs)
        if r.content_type == "text/html":
            self.last_page = await r.text()
        return r

    async def post_form(self, path: str, data: Mapping[str, str], *, csrf: str | None = None,
                        origin: str | None = "", **kwargs: Any) -> aiohttp.ClientResponse:
        """POST a form like a browser: the page's CSRF token unless ``csrf`` is given
        (``csrf=""`` sends none), and ``Origin`` (``None``: no Origin header)."""
        body = dict(data)
        token = self.csrf if csrf is None else csrf
        if token:
            body["csrf"] = token
        headers = {"Accept": "text/html", **self.headers, **kwargs.pop("headers", {})}
        if origin is not None:
            headers["Origin"] = origin or self.origin
        r = await self.session.post(self.base + path, data=body, headers=headers,
                                    allow_redirects=kwargs.pop("allow_redirects", False),
                                    **kwargs)
        if r.content_type == "text/html":
            self.last_page = await r.text()
        return r

    async def login(self, name: str, password: str) -> aiohttp.ClientResponse:
        await self.get("/login")
        r = await self.post_form("/login", {"name": name, "password": password,
                                            "next": "/access/mine"})
        assert r.status == 303, await r.text()
        return r


@dataclass
class Service:
    url: str
    app: web.Application
    store: Store
    settings: Settings
    _clients: list[aiohttp.ClientSession] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def client(self, **headers: str) -> AsyncIterator[Client]:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            yield Client(self.url, session, self.url, headers=dict(headers))

    def basic(self, name: str, password: str | None = None) -> dict[str, str]:
        """``headers=`` for HTTP Basic as ``name`` (their password unless given)."""
        secret = DEFAULT_USERS[name][0] if password is None else password
        return {"Authorization": aiohttp.encode_basic_auth(name, secret)}


def add_users(store: Store, people: Mapping[str, tuple[str, Iterable[str], str | None,
                                                        str | None]]) -> None:
    for name, (password, roles, department, email) in people.items():
        users.add_user(store, name, password, roles, department=department, email=email)


@contextlib.asynccontextmanager
async def running_service(tmp_path: Path, store_url: str, *,
                          people: Mapping[str, Any] | None = None,
                          policy: PolicyState | None = None,
                          **settings: Any) -> AsyncIterator[Service]:
    """The real service app (``create_app``) on a free loopback port, with users added."""
    store = open_store(store_url, hasher=FAST, audit_key_file=tmp_path / "audit.keys")
    add_users(store, DEFAULT_USERS if people is None else people)
    config = Settings(policy=EXAMPLE_POLICY, var_dir=tmp_path, **settings)
    app = create_app(config, policy or PolicyState(EXAMPLE_POLICY))
    app[keys.STORE] = store
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Service(f"http://127.0.0.1:{port}", app, store, config)
    finally:
        await runner.cleanup()
        store.close()

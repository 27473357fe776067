"""Who is calling the service: sessions, HTTP Basic, and the ``require_*`` guards.

Users are the store's (the same names and passwords as the gateway's proxy login).

* **Sessions** are rows in the store (``proxy/store/sessions.py``): the ``sargs_session``
  cookie holds a random secret, the table its SHA-256. A session lives
  ``Settings.session_hours`` unless it is ended first: by logout, by "log out everywhere"
  (``/sessions``), or by a password change, role change or removal of the user (in the
  same transaction as the change). Every node reads the same table, so an ended session is
  refused everywhere on its next request. Cookies are ``HttpOnly; SameSite=Strict;
  Path=/`` and ``Secure`` when the service is reached over https. The service secret
  (``Settings.secret_key``, else ``VAR_DIR/secret.key``, made once, mode 0600; the same on
  every node) keys the CSRF tokens.
* **API clients** log in with HTTP Basic on each request; a successful check is cached
  for a minute (argon2 is slow on purpose) and re-read against the user's row on every use
  (a changed password or role ends it at once); failures are limited and recorded in the
  audit log (``clients.py``).

Handlers use ``await current_user(request)``, ``await require_user(request)`` (401, or a
redirect to the login page for browsers) and ``await require_approver(request)`` (403 for
users without the ``approver`` or ``admin`` role). CSRF and Origin checks are in
``csrf.py``, the login and logout pages in ``login.py``, who approves what in
``proxy/policy/scopes.py``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from proxy.directory.negotiate import is_negotiate
from proxy.policy.scopes import is_approver
from proxy.secretfile import read_or_create
from proxy.service import keys, negotiate
from proxy.service.clients import LoginLimiter, client_address, too_many, trusted_networks
from proxy.service.errors import wants_html
from proxy.settings import Settings
from proxy.store import audit, sessions, users
from proxy.store.users import User

SESSION_COOKIE = "sargs_session"
BASIC_CACHE_SECONDS = 60.0
_BASIC_CACHE_SIZE = 1000

USER = web.RequestKey("sargs.user", object)
"""What ``current_user`` found for this request (a ``User``, or ``None``)."""


def load_secret(settings: Settings) -> bytes:
    """The service secret: ``Settings.secret_key``, else ``VAR_DIR/secret.key`` (made once)."""
    configured = settings.secret_key.get_secret_value()
    if configured:
        return configured.encode()
    return read_or_create(Path(settings.var_dir) / "secret.key", "secret").encode()


@dataclass
class Auth:
    """The service's login machinery (one per app: ``request.app[AUTH]``)."""

    settings: Settings
    session_seconds: float
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    _basic: dict[str, tuple[User, float]] = field(default_factory=dict)
    _secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        """Loaded (or generated) on first use, so an app that never logs anyone in writes
        nothing."""
        if self._secret is None:
            self._secret = load_secret(self.settings)
        return self._secret

    def csrf_for(self, binding: str) -> str:
        """The CSRF token for a session id (or a pre-login cookie value)."""
        mac = hmac.new(self.secret, b"csrf\0" + binding.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def cached_basic(self, name: str, password: str) -> User | None:
        hit = self._basic.get(self._basic_key(name, password))
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def remember_basic(self, name: str, password: str, user: User) -> None:
        if len(self._basic) >= _BASIC_CACHE_SIZE:
            self._basic.clear()
        self._basic[self._basic_key(name, password)] = (
            user, time.monotonic() + BASIC_CACHE_SECONDS)

    def forget_basic(self, name: str, password: str) -> None:
        self._basic.pop(self._basic_key(name, password), None)

    def _basic_key(self, name: str, password: str) -> str:
        return hmac.new(self.secret, f"{name}\0{password}".encode(), hashlib.sha256).hexdigest()


AUTH = web.AppKey("sargs.auth", Auth)


def is_https(request: web.Request) -> bool:
    settings = request.app[keys.SETTINGS]
    return request.secure or settings.public_service_url.startswith("https:")


# --- who is calling -------------------------------------------------------------------------


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


def session_of(request: web.Request) -> str | None:
    """The id of the session the request's cookie names (whether or not it is still live):
    what CSRF tokens are bound to. ``current_user`` decides whether it is live."""
    value = request.cookies.get(SESSION_COOKIE)
    return sessions.session_id(value) if value else None


async def current_user(request: web.Request) -> User | None:
    """The logged-in user: a live session, or HTTP Basic credentials; else ``None``.

    A wrong Basic password counts as a failed login (limited: ``web.HTTPTooManyRequests``;
    recorded in the audit log).
    """
    if USER in request:
        found = request[USER]
        return found if isinstance(found, User) else None
    user = await _identify(request)
    request[USER] = user
    return user


async def _identify(request: web.Request) -> User | None:
    store = request.app[keys.STORE]
    header = request.headers.get("Authorization", "")
    if header and not is_negotiate(header):  # Negotiate: /login only (service/negotiate.py)
        credentials = _basic_credentials(header)
        return None if credentials is None else await _basic(request, *credentials)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    session = await asyncio.to_thread(sessions.find, store, token)
    if session is None:
        return None
    return await asyncio.to_thread(users.get_user, store, session.user)


async def _basic(request: web.Request, name: str, password: str) -> User | None:
    store = request.app[keys.STORE]
    auth = request.app[AUTH]
    cached = auth.cached_basic(name, password)
    if cached is not None:
        # One indexed read, not an argon2 hash: a changed password or role ends it now.
        current = await asyncio.to_thread(users.get_user, store, name)
        if current is not None and current.updated_at == cached.updated_at:
            return current
        auth.forget_basic(name, password)
    address = client_address(request)
    wait = auth.limiter.retry_after(address, name)
    if wait:
        raise too_many(wait)
    user = await asyncio.to_thread(users.verify_password, store, name, password)
    if user is None:
        count = auth.limiter.failed(address, name)
        await asyncio.to_thread(audit.record_failed_login, store, name, address, "api", count)
        return None
    auth.limiter.succeeded(address, name)
    auth.remember_basic(name, password, user)
    return user


def browser_script(request: web.Request) -> bool:
    """A script in a browser page or extension is calling (not a person or a program):
    such callers must never get a ``WWW-Authenticate`` challenge, or the browser shows its
    own login box."""
    return "Sec-Fetch-Mode" in request.headers or "Origin" in request.headers


def unauthorized(request: web.Request, message: str, realm: str = "Sargs"
                 ) -> web.HTTPUnauthorized:
    """401 JSON; with a Basic challenge only for programs (curl, scripts), never for a
    browser's fetch or an extension."""
    headers = {} if browser_script(request) else {
        "WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'}
    return web.HTTPUnauthorized(text=json.dumps({"error": message}),
                                content_type="application/json", headers=headers)


def _login_redirect(request: web.Request) -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))


async def require_user(request: web.Request) -> User:
    """The logged-in user, or: a redirect to the login page (browsers asking for a page)
    or 401 JSON (API clients; with a Basic challenge unless a browser script asked)."""
    user = await current_user(request)
    if user is not None:
        return user
    if request.method == "GET" and wants_html(request):
        raise _login_redirect(request)
    raise unauthorized(request, "log in first: a session, or HTTP Basic with your Sargs user "
                                "name and password")


async def require_approver(request: web.Request) -> User:
    """A logged-in approver (``is_approver``); else 401/403."""
    user = await require_user(request)
    if not is_approver(user, request.app[keys.POLICY].current.loaded.policy):
        raise web.HTTPForbidden(
            text=json.dumps({"error": "only approvers may do this"}),
            content_type="application/json")
    return user


async def require_admin(request: web.Request) -> User:
    user = await require_user(request)
    if "admin" not in user.roles:
        raise web.HTTPForbidden(text=json.dumps({"error": "only admins may do this"}),
                                content_type="application/json")
    return user


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="Strict", secure=is_https(request))




def setup(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    trusted_networks(settings.trusted_proxies)  # a bad entry stops the start, named
    app[AUTH] = Auth(settings, settings.session_hours * 3600)
    negotiate.setup(app)

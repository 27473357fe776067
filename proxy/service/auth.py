"""Who is calling the service: sessions, HTTP Basic, and the ``require_*`` guards.

Users are the store's (the same names and passwords as the gateway's proxy login).

* **Sessions** are signed cookies, not server rows: ``sargs_session`` holds
  ``{sid, user, exp, stamp}`` signed with HMAC-SHA256 under the service secret
  (``Settings.secret_key``, else ``VAR_DIR/secret.key``, generated once, mode 0600; every
  service node of one institution needs the same secret). The server checks the expiry
  (``Settings.session_hours``) and that the user still exists with the same ``updated_at``
  ``stamp``: changing a user's password or roles ends their sessions on every node.
  Cookies are ``HttpOnly; SameSite=Strict; Path=/`` and ``Secure`` when the service is
  reached over https.
* **API clients** log in with HTTP Basic on each request; successful checks are cached for
  a minute (argon2 is slow on purpose); failures are limited (``clients.py``).

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
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from proxy.policy.scopes import is_approver
from proxy.service import keys
from proxy.service.clients import LoginLimiter, client_address, too_many
from proxy.service.errors import wants_html
from proxy.settings import Settings
from proxy.store import users
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
    path = Path(settings.var_dir) / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    value = path.read_text().strip()
    if len(value) < 32:
        raise RuntimeError(f"{path} holds no usable secret (delete it to make a new one)")
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    user: str
    expires: float
    stamp: str


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

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self.secret, purpose + b"\0" + data, hashlib.sha256).digest()

    def new_session(self, user: User, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        return Session(secrets.token_urlsafe(18), user.name, now + self.session_seconds,
                       _stamp(user))

    def encode(self, session: Session) -> str:
        payload = json.dumps({"sid": session.sid, "u": session.user, "exp": session.expires,
                              "st": session.stamp}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(b'session', payload))}"

    def decode(self, value: str, now: float | None = None) -> Session | None:
        """The session in a cookie value, or ``None`` if forged, malformed or expired."""
        body, _, mac = value.partition(".")
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(given, self._mac(b"session", payload)):
            return None
        try:
            data = json.loads(payload)
            session = Session(str(data["sid"]), str(data["u"]), float(data["exp"]),
                              str(data["st"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session

    def csrf_for(self, binding: str) -> str:
        """The CSRF token for a session id (or a pre-login cookie value)."""
        return _b64(self._mac(b"csrf", binding.encode()))

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

    def _basic_key(self, name: str, password: str) -> str:
        return hmac.new(self.secret, f"{name}\0{password}".encode(), hashlib.sha256).hexdigest()


AUTH = web.AppKey("sargs.auth", Auth)


def _stamp(user: User) -> str:
    return user.updated_at.isoformat() if user.updated_at else ""


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


def session_of(request: web.Request) -> Session | None:
    value = request.cookies.get(SESSION_COOKIE)
    return request.app[AUTH].decode(value) if value else None


async def current_user(request: web.Request) -> User | None:
    """The logged-in user: a valid session cookie, or HTTP Basic credentials; else ``None``.

    A wrong Basic password counts as a failed login (rate limited: ``web.HTTPTooManyRequests``).
    """
    if USER in request:
        found = request[USER]
        return found if isinstance(found, User) else None
    user = await _identify(request)
    request[USER] = user
    return user


async def _identify(request: web.Request) -> User | None:
    store = request.app[keys.STORE]
    auth = request.app[AUTH]
    header = request.headers.get("Authorization", "")
    if header:
        credentials = _basic_credentials(header)
        if credentials is None:
            return None
        name, password = credentials
        cached = auth.cached_basic(name, password)
        if cached is not None:
            return cached
        address = client_address(request)
        wait = auth.limiter.retry_after(address, name)
        if wait:
            raise too_many(wait)
        user = await asyncio.to_thread(users.verify_password, store, name, password)
        if user is None:
            auth.limiter.failed(address, name)
            return None
        auth.limiter.succeeded(address, name)
        auth.remember_basic(name, password, user)
        return user
    session = session_of(request)
    if session is None:
        return None
    user = await asyncio.to_thread(users.get_user, store, session.user)
    if user is None or _stamp(user) != session.stamp:
        return None
    return user


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
    headers = {}
    if "Sec-Fetch-Mode" not in request.headers:  # not a browser's fetch: challenge
        headers["WWW-Authenticate"] = 'Basic realm="Sargs", charset="UTF-8"'
    raise web.HTTPUnauthorized(
        text=json.dumps({"error": "log in first: a session, or HTTP Basic with your Sargs "
                                  "user name and password"}),
        content_type="application/json", headers=headers)


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
    app[AUTH] = Auth(settings, settings.session_hours * 3600)

"""Who is calling the service: login, sessions, CSRF and Origin checks, rate limiting.

Users are the store's (the same names and passwords as the gateway's proxy login).

* **Sessions** are signed cookies, not server rows: ``sargs_session`` holds
  ``{sid, user, exp, stamp}`` signed with HMAC-SHA256 under the service secret
  (``Settings.secret_key``, else ``VAR_DIR/secret.key``, generated once, mode 0600; every
  service node of one institution needs the same secret). The server checks the expiry
  (``Settings.session_hours``) and that the user still exists with the same ``updated_at``
  ``stamp``: changing a user's password or roles ends their sessions on every node.
  Cookies are ``HttpOnly; SameSite=Strict; Path=/`` and ``Secure`` when the service is
  reached over https.
* **CSRF**: every form POST carries a ``csrf`` field (JSON clients with a session send an
  ``X-CSRF-Token`` header) equal to HMAC(secret, session id), compared with
  ``secrets.compare_digest``. Before login, the token is bound to a random ``sargs_pre``
  cookie instead.
* **Origin**: an unsafe request (POST, PUT, PATCH, DELETE) to a page, or to the API with
  credentials (a session cookie or ``Authorization: Basic``), is refused (403) when its
  ``Origin`` (or, without one, ``Referer``) is another site's. Credential-less API calls
  (``/api/v1/check`` from the content script, gateways with a bearer token) are not
  affected.
* **API clients** log in with HTTP Basic on each request; successful checks are cached for
  a minute (argon2 is slow on purpose).
* **Rate limiting**: after ``MAX_FAILURES`` failed logins for one name from one address
  within ``FAILURE_WINDOW`` seconds (or ``MAX_FAILURES_PER_ADDRESS`` from one address for
  any names), further attempts get 429 until the window passes.

Handlers use ``await current_user(request)``, ``await require_user(request)`` (401, or a
redirect to the login page for browsers) and ``await require_approver(request)`` (403 for
users without the ``approver`` or ``admin`` role).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from proxy.directory.negotiate import is_negotiate
from proxy.policy.model import Policy, Role
from proxy.service import keys, negotiate
from proxy.service.errors import json_error
from proxy.service.pages import render, wants_html
from proxy.settings import Settings
from proxy.store import audit, users
from proxy.store.users import User

log = logging.getLogger("sargs.service.auth")

SESSION_COOKIE = "sargs_session"
PRE_COOKIE = "sargs_pre"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
APPROVER_ROLES = frozenset({"approver", "admin"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 30
FAILURE_WINDOW = 300.0
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


class LoginLimiter:
    """Counts failed logins per (address, name) and per address in a sliding window."""

    def __init__(self, window: float = FAILURE_WINDOW) -> None:
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        while found and found[0] <= now - self.window:
            found.popleft()
        if not found:
            del self._failures[key]
        return found

    def retry_after(self, address: str, name: str, now: float | None = None) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic() if now is None else now
        waits = []
        limits = ((f"{address}|{name}", MAX_FAILURES), (address, MAX_FAILURES_PER_ADDRESS))
        for key, limit in limits:
            recent = self._recent(key, now)
            if len(recent) >= limit:
                waits.append(int(recent[0] + self.window - now) + 1)
        return max(waits, default=0)

    def failed(self, address: str, name: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > 10_000:  # bounded memory under a spray of names
            for key in list(self._failures)[:5_000]:
                del self._failures[key]
        for key in (f"{address}|{name}", address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, address: str, name: str) -> None:
        self._failures.pop(f"{address}|{name}", None)


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


def client_address(request: web.Request) -> str:
    return request.remote or "?"


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
    if header and not is_negotiate(header):  # Negotiate: /login only (service/negotiate.py)
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
            raise _too_many(wait)
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


def _too_many(wait: int) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        text=json.dumps({"error": f"too many failed logins: try again in {wait} s"}),
        content_type="application/json", headers={"Retry-After": str(wait)})


# --- who approves what (policy) -----------------------------------------------------------


def _listed(approvers: list[str], user: User) -> bool:
    return any(a == user.name or (a.startswith("role:") and a[5:] in user.roles)
               for a in approvers)


def is_approver(user: User, policy: Policy | None = None) -> bool:
    """May see the approver pages: the ``approver`` or ``admin`` role, or named (by name or
    role) in one of the policy's ``approvals`` rules."""
    if any(role in APPROVER_ROLES for role in user.roles):
        return True
    return policy is not None and any(_listed(r.approvers, user) for r in policy.approvals)


def may_decide(policy: Policy, approver: User, requester: User | None, platform: str,
               requester_name: str) -> bool:
    """Whether ``approver`` may approve or reject a request of ``requester`` for ``platform``.

    Never their own. ``admin`` decides everything. Without ``approvals`` rules every
    ``approver`` decides everything; with rules, an approver decides a request when a rule
    lists them (by name or ``role:``) and matches the requester's roles, the platform and
    the requester's department (empty lists match anything).
    """
    if approver.name == requester_name:
        return False
    if "admin" in approver.roles:
        return True
    if not policy.approvals:
        return "approver" in approver.roles
    roles = set(requester.roles) if requester is not None else set()
    department = requester.department if requester is not None else None
    for rule in policy.approvals:
        if rule.roles and not roles.intersection(rule.roles):
            continue
        if rule.platforms and platform not in rule.platforms:
            continue
        if rule.departments and department not in rule.departments:
            continue
        if _listed(rule.approvers, approver):
            return True
    return False


def grant_cap_minutes(policy: Policy, requester: User | None) -> int:
    """The longest temporary access for this requester: the largest ``max_grant_hours``
    among their roles in the policy (the role default when they hold none)."""
    hours = [policy.roles[r].max_grant_hours for r in (requester.roles if requester else ())
             if r in policy.roles]
    default = Role.model_fields["max_grant_hours"].default
    return int(max(hours, default=default)) * 60


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


# --- CSRF and Origin ------------------------------------------------------------------------


def csrf_token(request: web.Request) -> str:
    """The token forms on this page must send back (session-bound, or pre-login)."""
    auth = request.app[AUTH]
    session = session_of(request)
    if session is not None:
        return auth.csrf_for(session.sid)
    pre = request.get(_PRE_NEW) or request.cookies.get(PRE_COOKIE)
    if not pre:
        pre = secrets.token_urlsafe(18)
        request[_PRE_NEW] = pre
    return auth.csrf_for("pre:" + str(pre))


_PRE_NEW = web.RequestKey("sargs.pre", str)


async def check_csrf(request: web.Request, given: str | None) -> None:
    """Refuse (403) unless ``given`` is this session's (or pre-login cookie's) token."""
    auth = request.app[AUTH]
    session = session_of(request)
    if session is not None:
        expected = auth.csrf_for(session.sid)
    else:
        pre = request.cookies.get(PRE_COOKIE)
        expected = auth.csrf_for("pre:" + pre) if pre else ""
    if not given or not expected or not secrets.compare_digest(given, expected):
        raise _forbidden(request, "the form's security token is missing or wrong; reload the "
                                  "page and try again")


def _forbidden(request: web.Request, message: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=json.dumps({"error": message}),
                             content_type="application/json")


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origins(request: web.Request) -> set[str]:
    settings = request.app[keys.SETTINGS]
    found = {f"{request.scheme}://{request.host}".lower()}
    public = _origin_of(settings.public_service_url)
    if public:
        found.add(public)
    return found


def cross_origin(request: web.Request) -> str | None:
    """The foreign origin of an unsafe request, or ``None`` when it is ours or unknown."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return None
        origin = _origin_of(referer) or "null"
    origin = origin.strip().lower()
    return None if origin in own_origins(request) else origin


def _carries_credentials(request: web.Request) -> bool:
    headers = request.headers
    return ("Cookie" in headers and SESSION_COOKIE in request.cookies) or headers.get(
        "Authorization", "").lower().startswith("basic ")


def cross_site_refusal(request: web.Request) -> web.Response | None:
    """403 for an unsafe request from another site, before any handler runs.

    The API takes them when they carry no credentials (the check is called from every
    platform's pages)."""
    if request.method in UNSAFE and (
        not request.path.startswith("/api/") or _carries_credentials(request)
    ):
        foreign = cross_origin(request)
        if foreign is not None:
            log.warning("refused %s %s from origin %s", request.method, request.path, foreign)
            return json_error(403, f"cross-site request refused (origin {foreign})")
    return None


def after(request: web.Request, response: web.StreamResponse) -> None:
    """A page that started a pre-login session (``csrf_token``) sets its cookie.

    API handlers render no pages, so they never start one: their answers are left
    as they are (the check is on the hot path)."""
    if request.path.startswith("/api/"):
        return
    pre = request.get(_PRE_NEW)
    if pre and not response.prepared:
        set_cookie(request, response, PRE_COOKIE, str(pre), max_age=3600)


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="Strict", secure=is_https(request))


# --- pages: login and logout ---------------------------------------------------------------

routes = web.RouteTableDef()


def _safe_next(value: str | None) -> str:
    """Only paths on this service (never ``//host`` or ``https://…``: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/access/mine"
    return value


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    target = _safe_next(request.query.get("next"))
    signed = await negotiate.sign_on(request)  # Kerberos first (proxy/service/negotiate.py)
    if isinstance(signed, User):
        await negotiate.record_login(request, signed)
        response = web.HTTPSeeOther(target)
        set_cookie(request, response, SESSION_COOKIE, request.app[AUTH].encode(
            request.app[AUTH].new_session(signed)), max_age=int(request.app[AUTH].session_seconds))
        response.del_cookie(PRE_COOKIE, path="/")
        raise response
    page = render(request, "login.html", status=200, next=target, name="",
                  error=("negotiate_no_role", {}) if signed == "no-role" else None)
    return negotiate.challenge(page) if negotiate.offers(request) and not signed else page


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    name = _str(form.get("name")).strip()
    password = _str(form.get("password"))
    target = _safe_next(_str(form.get("next")))
    auth = request.app[AUTH]
    store = request.app[keys.STORE]
    address = client_address(request)
    wait = auth.limiter.retry_after(address, name)
    if wait:
        response = render(request, "login.html", status=429, next=target, name=name,
                          error=("login_wait", {"seconds": wait}))
        response.headers["Retry-After"] = str(wait)
        return response
    user = await asyncio.to_thread(users.verify_password, store, name, password) \
        if name and password else None
    if user is None:
        auth.limiter.failed(address, name)
        await asyncio.to_thread(audit.append, store, audit.Kind.login_failed, user=name[:128],
                                details={"address": address, "via": "service"})
        return render(request, "login.html", status=401, next=target, name=name,
                      error=("login_failed", {}))
    auth.limiter.succeeded(address, name)
    session = auth.new_session(user)
    await asyncio.to_thread(audit.append, store, audit.Kind.login, actor=user.name,
                            user=user.name, details={"address": address, "via": "service"})
    response = web.HTTPSeeOther(target)
    set_cookie(request, response, SESSION_COOKIE, auth.encode(session),
               max_age=int(auth.session_seconds))
    response.del_cookie(PRE_COOKIE, path="/")
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    await check_csrf(request, _str(form.get(CSRF_FIELD)))
    user = await current_user(request)
    if user is not None:
        await asyncio.to_thread(audit.append, request.app[keys.STORE], audit.Kind.logout,
                                actor=user.name, user=user.name)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def setup(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    app[AUTH] = Auth(settings, settings.session_hours * 3600)
    negotiate.setup(app)
    app.add_routes(routes)

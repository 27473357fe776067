"""What IT hands out to browsers: the PAC file and the gateway's CA certificate.

- ``GET /proxy.pac`` (also ``/wpad.dat`` for WPAD): catalog domains go through the
  gateways (``Settings.gateways``, in failover order, then ``DIRECT``); everything else
  goes ``DIRECT``. With ``Settings.pac_fail_closed`` catalog domains never go
  ``DIRECT``: after the gateways comes a blackhole (``PROXY 127.0.0.1:9``, the discard
  port, where nothing answers), so when no gateway answers the platforms do not load.
  Built from the policy in force, so a reload changes it.
- ``GET /ca``: a page (en, lv, sv, sq) to download the CA with per-OS and per-browser
  instructions; ``GET /ca.pem`` (PEM) and ``GET /ca.crt`` (DER, what Windows expects).
  The CA is ``Settings.service_ca_file`` when set (a service node without a gateway on its
  host), else the institution's (``Settings.ca_cert``), else the one the gateway generated
  in the shared ``VAR_DIR/mitmproxy``.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from proxy.i18n import LANGUAGES, Translator
from proxy.service import keys, pages
from proxy.settings import Settings

routes = web.RouteTableDef()

PAC_MIME = "application/x-ns-proxy-autoconfig"
LANGUAGE_NAMES = {"en": "English", "lv": "Latviešu", "sv": "Svenska", "sq": "Shqip"}
_UNSPECIFIED = ("0.0.0.0", "::", "[::]", "")  # noqa: S104 - compared, never bound


BLACKHOLE = "PROXY 127.0.0.1:9"
"""The last entry of a fail-closed route: the discard port on the browser's own machine,
where nothing listens, so the request fails instead of going anywhere."""


def pac_file(domains: list[str], gateways: list[str], *, fail_closed: bool = False) -> str:
    """A PAC file sending ``domains`` (and their sub-domains) to ``gateways``, the rest DIRECT.

    Browsers try the gateways in order and fall back to the next when one does not answer.
    By default the final ``DIRECT`` keeps platforms reachable if every gateway is down (the
    institution's firewall decides whether that is allowed); ``fail_closed`` ends the route
    with ``BLACKHOLE`` instead, so they are then unreachable from the browser.
    """
    last = BLACKHOLE if fail_closed else "DIRECT"
    route = "; ".join([*(f"PROXY {g}" for g in gateways), last])
    listed = ",\n".join(f"  {json.dumps(d)}" for d in sorted(set(domains)))
    fallback = ("never DIRECT: when no gateway answers, nowhere" if fail_closed
                else "DIRECT when no gateway answers")
    return f"""// Sargs proxy auto-configuration. Generated from the policy catalog; do not edit.
// Social-media platforms go through the Sargs gateway(s) ({fallback});
// everything else goes DIRECT.
var SARGS_ROUTE = {json.dumps(route)};
var SARGS_DOMAINS = [
{listed}
];

function FindProxyForURL(url, host) {{
  host = host.toLowerCase();
  if (host.charAt(host.length - 1) === ".") {{
    host = host.substring(0, host.length - 1);  // "www.facebook.com." is www.facebook.com
  }}
  if (isPlainHostName(host) || shExpMatch(host, "*.local")) {{
    return "DIRECT";
  }}
  for (var i = 0; i < SARGS_DOMAINS.length; i++) {{
    var domain = SARGS_DOMAINS[i];
    if (host === domain || dnsDomainIs(host, "." + domain)) {{
      return SARGS_ROUTE;
    }}
  }}
  return "DIRECT";
}}
"""


def gateways_for(settings: Settings, request_host: str) -> list[str]:
    """The configured gateways; a wildcard listen address becomes the name the browser used."""
    out = []
    for gateway in settings.gateway_list:
        host, _, port = gateway.rpartition(":")
        if host in _UNSPECIFIED:
            host = request_host or "127.0.0.1"
            try:
                if ipaddress.ip_address(host).version == 6:
                    host = f"[{host}]"
            except ValueError:
                pass
        out.append(f"{host}:{port}")
    return out


@routes.get("/proxy.pac")
@routes.get("/wpad.dat")
async def proxy_pac(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    catalog = request.app[keys.POLICY].current.catalog
    host = (request.url.host or "").strip("[]")
    body = pac_file(catalog.domains(), gateways_for(settings, host),
                    fail_closed=settings.pac_fail_closed)
    return web.Response(
        text=body,
        content_type=PAC_MIME,
        headers={"Cache-Control": "max-age=300"},
    )


# --- the CA ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaInfo:
    pem: bytes
    der: bytes
    subject: str
    not_after: str
    sha256: str
    institution: bool


def ca_path(settings: Settings) -> tuple[Path, bool]:
    """Where the CA browsers must trust lives, and whether it is the institution's own:
    ``Settings.service_ca_file`` (a service node on another host than the gateways: a copy
    of their CA certificate), else ``Settings.ca_cert``, else the one the gateway made in
    the shared ``VAR_DIR/mitmproxy``."""
    if settings.service_ca_file is not None:
        return settings.service_ca_file, settings.ca_cert is not None
    if settings.ca_cert is not None:
        return settings.ca_cert, True
    return settings.var_dir / "mitmproxy" / "mitmproxy-ca-cert.pem", False


def read_ca(settings: Settings) -> CaInfo | None:
    path, institution = ca_path(settings)
    try:
        data = path.read_bytes()
    except OSError:  # missing, or unreadable (another user's state directory)
        return None
    cert = x509.load_pem_x509_certificate(data)  # the first certificate in the file
    der = cert.public_bytes(Encoding.DER)
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CaInfo(
        pem=cert.public_bytes(Encoding.PEM),
        der=der,
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc.date().isoformat(),
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        institution=institution,
    )


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-cache",
        },
    )


@routes.get("/ca.pem")
async def ca_pem(request: web.Request) -> web.Response:
    info = read_ca(request.app[keys.SETTINGS])
    if info is None:
        raise web.HTTPNotFound(text="the gateway has not created its CA yet")
    return _download(info.pem, "application/x-pem-file", "sargs-ca.pem")


@routes.get("/ca.crt")
async def ca_der(request: web.Request) -> web.Response:
    info = read_ca(request.app[keys.SETTINGS])
    if info is None:
        raise web.HTTPNotFound(text="the gateway has not created its CA yet")
    return _download(info.der, "application/x-x509-ca-cert", "sargs-ca.crt")


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


FIREFOX_POLICY = json.dumps(
    {
        "policies": {
            "Certificates": {
                "ImportEnterpriseRoots": True,
                "Install": ["/etc/sargs/sargs-ca.pem"],
            }
        }
    },
    indent=2,
)


def page_language(request: web.Request) -> str:
    """As on every page: ``?lang=``, the language switch's cookie, Accept-Language."""
    return pages.language(request)


@routes.get("/ca")
async def ca_page(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    lang = page_language(request)
    info = read_ca(settings)
    html = _templates().get_template("ca.html").render(
        lang=lang,
        t=Translator("deploy", lang),
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        cert=info,
        firefox_policy=FIREFOX_POLICY,
        pac_url=f"{settings.public_service_url}/proxy.pac",
    )
    return web.Response(
        text=html,
        content_type="text/html",
        headers={"Content-Language": lang, "Vary": "Accept-Language"},
    )


def setup(app: web.Application) -> None:
    app.add_routes(routes)

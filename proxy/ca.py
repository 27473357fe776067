"""The institution's interception CA: its own name, and name constraints that let it sign
only the catalog's domains.

mitmproxy signs a certificate for every platform host it intercepts with the CA in its
confdir (``mitmproxy-ca.pem``: private key, then certificate). Left to itself it generates
a CA called "mitmproxy" that can sign for any name, so whoever steals its key can
impersonate a bank to every browser that trusts it. The CA made here instead:

- is called "Sargs – <institution> interception CA" (subject CN, O = the institution);
- carries critical X.509 name constraints: the permitted DNS subtrees are the catalog's
  domains (sites and media; a subtree covers the domain and every name below it), and
  every IPv4 and IPv6 address is excluded. Browsers and TLS libraries refuse a
  certificate from it for any other name, wherever the key ends up;
- may sign only end-entity certificates (path length 0) for TLS servers (extended key
  usage serverAuth).

mitmproxy signs its host certificates with the CA's own key and puts the SNI host (and the
CONNECT host) in the subject alternative names; with ``connection_strategy=lazy`` it has
no upstream certificate whose names it could copy at that point, so nothing outside the
host asked for appears in them (``upstream_cert=false`` makes that hold whatever the
strategy).

When the catalog grows, the CA must be made again (``sargs ca regenerate``) and handed out
again: ``missing_domains`` tells which catalog domains the CA in place cannot sign for.
An institution-supplied CA (``SARGS_CA_CERT``/``SARGS_CA_KEY``) is still used as given.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_FILE = "mitmproxy-ca.pem"
"""What mitmproxy reads: the private key, then the certificate (PEM)."""
CERT_FILE = "mitmproxy-ca-cert.pem"
"""The certificate alone: what browsers trust (the service's /ca page serves it)."""
CER_FILE = "mitmproxy-ca-cert.cer"
STALE = ("mitmproxy-ca.p12", "mitmproxy-ca-cert.p12")
"""Files mitmproxy wrote for a CA of its own; they would mislead whoever installs them."""
VALID_DAYS = 5 * 365
KEY_BITS = 3072  # mitmproxy also uses the CA key for the host certificates: RSA


def ca_name(institution: str) -> str:
    return f"Sargs – {institution.strip()} interception CA"


def _domains(domains: Iterable[str]) -> list[str]:
    out = sorted({d.strip().lower().rstrip(".") for d in domains if d.strip()})
    if not out:
        raise ValueError("the catalog names no domains: a CA constrained to them could sign "
                         "nothing")
    for domain in out:
        if not domain.isascii() or domain.startswith(".") or "*" in domain:
            raise ValueError(f"{domain!r} is not a plain ASCII domain name (use its A-label)")
    return out


def generate_ca(institution: str, domains: Iterable[str], *, valid_days: int = VALID_DAYS,
                now: datetime.datetime | None = None,
                ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new key and self-signed CA certificate that can sign only for ``domains``."""
    permitted = _domains(domains)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, ca_name(institution)[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, institution.strip()[:64] or "Sargs"),
    ])
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=1)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.NameConstraints(
            permitted_subtrees=[x509.DNSName(d) for d in permitted],
            excluded_subtrees=[x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
                               x509.IPAddress(ipaddress.ip_network("::/0"))]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def write_ca(confdir: Path, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> Path:
    """Put the CA where mitmproxy reads it (key file 0600, written whole, then renamed into
    place). Returns the certificate's path."""
    confdir.mkdir(parents=True, exist_ok=True)
    combined = key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    _replace(confdir / KEY_FILE, combined + cert_pem, 0o600)
    _replace(confdir / CERT_FILE, cert_pem, 0o644)
    _replace(confdir / CER_FILE, cert_pem, 0o644)
    for stale in STALE:
        (confdir / stale).unlink(missing_ok=True)
    return confdir / CERT_FILE


def _replace(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def read_cert(confdir: Path) -> x509.Certificate | None:
    """The CA certificate mitmproxy would use from ``confdir`` (None: there is none yet)."""
    try:
        data = (confdir / KEY_FILE).read_bytes()
    except FileNotFoundError:
        return None
    return x509.load_pem_x509_certificates(data)[0]


def permitted_domains(cert: x509.Certificate) -> list[str] | None:
    """The DNS subtrees the CA may sign for (None: no name constraints, it signs anything)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    return [str(n.value) for n in constraints.permitted_subtrees or ()
            if isinstance(n, x509.DNSName)]


def missing_domains(cert: x509.Certificate, domains: Iterable[str]) -> list[str]:
    """Catalog domains the CA cannot sign for ([] when it signs anything or all of them)."""
    permitted = permitted_domains(cert)
    if permitted is None:
        return []
    return [d for d in _domains(domains)
            if not any(d == p or d.endswith("." + p) for p in permitted)]


@dataclass(frozen=True)
class CaState:
    cert_path: Path
    created: bool
    """A new CA was made now (none was there)."""
    constrained: bool
    """The CA in place carries name constraints (False: mitmproxy's or an old one)."""
    missing: list[str]
    """Catalog domains it cannot sign for: regenerate it (``sargs ca regenerate``)."""


def ensure_ca(confdir: Path, institution: str, domains: Iterable[str]) -> CaState:
    """Make the constrained CA in ``confdir`` unless one is there; report on the one there.

    An existing CA is never replaced here (browsers trust it; replacing it is IT's
    decision: ``sargs ca regenerate``)."""
    domains = list(domains)
    cert = read_cert(confdir)
    if cert is None:
        key, cert = generate_ca(institution, domains)
        return CaState(write_ca(confdir, key, cert), True, True, [])
    return CaState(confdir / CERT_FILE, False, permitted_domains(cert) is not None,
                   missing_domains(cert, domains))


def fingerprint(cert: x509.Certificate) -> str:
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))

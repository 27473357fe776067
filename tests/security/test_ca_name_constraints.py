"""Issue 12: a CA that can only sign what it must. A certificate mitmproxy signs with the
Sargs CA validates for a catalog host and fails for any other (a bank), over real TLS on
127.0.0.1 with Python's ssl (OpenSSL) and with cryptography's verifier; mitmproxy's own
CA, the control, would have let the bank through."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from mitmproxy.certs import CertStore

from proxy import ca
from proxy.runtime import PolicyState
from proxy.settings import ROOT

EXAMPLE = ROOT / "policies" / "institutions" / "example"
CATALOG_HOSTS = ["www.facebook.com", "facebook.com", "static.xx.fbcdn.net", "x.com",
                 "social.vivaldi.net"]
OTHER_HOSTS = ["www.swedbank.lv", "login.microsoftonline.com", "evilfacebook.com",
               "facebook.com.evil.example", "vivaldi.net"]


@pytest.fixture(scope="module")
def sargs_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    policy = PolicyState(EXAMPLE).current
    confdir = tmp_path_factory.mktemp("confdir")
    state = ca.ensure_ca(confdir, policy.loaded.policy.institution.name,
                         policy.catalog.domains())
    assert state.created
    return confdir


async def handshake(confdir: Path, host: str, tmp_path: Path) -> None:
    """mitmproxy signs a certificate for ``host`` with the CA in ``confdir`` (its CertStore,
    as its TLS add-on does); a TLS server on 127.0.0.1 presents it; a client that trusts
    only that CA connects with SNI ``host`` and checks it."""
    store = CertStore.from_store(confdir, "mitmproxy", 2048)
    entry = store.get_cert(host, [x509.DNSName(host)])
    cert_file, key_file = tmp_path / f"{host}.pem", tmp_path / f"{host}.key"
    cert_file.write_bytes(entry.cert.to_pem())
    key_file.write_bytes(entry.privatekey.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(confdir / "mitmproxy-ca-cert.pem"))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname=host)
        assert await reader.read() == b"hello"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def verify(confdir: Path, host: str) -> None:
    """cryptography's verifier (RFC 5280 path validation, name constraints included)."""
    store = CertStore.from_store(confdir, "mitmproxy", 2048)
    leaf = x509.load_pem_x509_certificate(store.get_cert(host, [x509.DNSName(host)]).cert.to_pem())
    root = x509.load_pem_x509_certificate((confdir / "mitmproxy-ca-cert.pem").read_bytes())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(host))
    verifier.verify(leaf, [])


@pytest.mark.parametrize("host", CATALOG_HOSTS)
async def test_a_catalog_host_validates(sargs_ca: Path, host: str, tmp_path: Path) -> None:
    await handshake(sargs_ca, host, tmp_path)
    verify(sargs_ca, host)


@pytest.mark.parametrize("host", OTHER_HOSTS)
async def test_any_other_host_fails_because_of_the_name_constraints(
    sargs_ca: Path, host: str, tmp_path: Path
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="subtree"):
        await handshake(sargs_ca, host, tmp_path)
    with pytest.raises(VerificationError):
        verify(sargs_ca, host)


async def test_an_ip_address_certificate_fails(sargs_ca: Path, tmp_path: Path) -> None:
    """What mitmproxy signs for a client without SNI: its own address."""
    import ipaddress

    store = CertStore.from_store(sargs_ca, "mitmproxy", 2048)
    leaf = store.get_cert("10.0.0.1", [x509.IPAddress(ipaddress.ip_address("10.0.0.1"))])
    root = x509.load_pem_x509_certificate((sargs_ca / "mitmproxy-ca-cert.pem").read_bytes())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")))
    with pytest.raises(VerificationError):
        verifier.verify(x509.load_pem_x509_certificate(leaf.cert.to_pem()), [])


async def test_control_mitmproxys_own_ca_signs_a_bank(tmp_path: Path) -> None:
    """Without the Sargs CA the same handshake succeeds: the test above can fail."""
    confdir = tmp_path / "mitmproxy-default"
    CertStore.create_store(confdir, "mitmproxy", 2048)
    await handshake(confdir, "www.swedbank.lv", tmp_path)


def test_the_ca_names_the_institution_and_is_private(sargs_ca: Path) -> None:
    cert = ca.read_cert(sargs_ca)
    assert cert is not None
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "Sargs – Example Ministry interception CA"
    assert "mitmproxy" not in cert.subject.rfc4514_string()
    assert (sargs_ca / "mitmproxy-ca.pem").stat().st_mode & 0o777 == 0o600
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (basic.ca, basic.path_length) == (True, 0)
    assert cert.extensions.get_extension_for_class(x509.NameConstraints).critical


def test_a_grown_catalog_is_reported_and_the_ca_is_kept(sargs_ca: Path) -> None:
    before = (sargs_ca / "mitmproxy-ca.pem").read_bytes()
    state = ca.ensure_ca(sargs_ca, "Example Ministry", ["facebook.com", "newplatform.example"])
    assert not state.created
    assert state.constrained
    assert state.missing == ["newplatform.example"]
    assert (sargs_ca / "mitmproxy-ca.pem").read_bytes() == before

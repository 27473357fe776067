"""``sargs ca show`` / ``sargs ca regenerate``: when the catalog grows, the CA in place
says so, and a new one covers the new platform."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography import x509

from proxy import ca
from proxy.cli.main import main
from proxy.settings import ROOT


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", copy)
    return copy / "institutions" / "example"


def grow_catalog(policy: Path) -> None:
    platforms = policy.parent.parent / "base" / "platforms.yaml"
    text = platforms.read_text()
    platforms.write_text(text.replace(
        "platforms:\n",
        "platforms:\n  newsocial:\n    name: New Social\n    domains: [newsocial.example]\n", 1))


def test_regenerate_covers_a_grown_catalog_and_keeps_the_old_ca(
    policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SARGS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SARGS_POLICY", str(policy))
    assert main(["ca", "show"]) == 1  # nothing yet
    assert main(["ca", "regenerate"]) == 0
    confdir = tmp_path / "var" / "mitmproxy"
    first = ca.read_cert(confdir)
    assert first is not None
    assert main(["ca", "show"]) == 0
    out = capsys.readouterr().out
    assert "Sargs – Example Ministry interception CA" in out
    assert "facebook.com" in out

    grow_catalog(policy)
    assert main(["ca", "show"]) == 1
    assert "cannot sign: newsocial.example" in capsys.readouterr().out
    assert main(["ca", "regenerate"]) == 0
    second = ca.read_cert(confdir)
    assert second is not None
    assert "newsocial.example" in (ca.permitted_domains(second) or [])
    assert second.serial_number != first.serial_number
    kept = x509.load_pem_x509_certificate((confdir / "mitmproxy-ca-cert.pem.previous")
                                          .read_bytes())
    assert ca.fingerprint(kept) == ca.fingerprint(first)
    assert (confdir / "mitmproxy-ca.pem").stat().st_mode & 0o777 == 0o600
    assert main(["ca", "show"]) == 0


def test_an_institution_ca_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key, cert = ca.generate_ca("Institution PKI", ["facebook.com"])
    confdir = tmp_path / "own"
    ca.write_ca(confdir, key, cert)
    monkeypatch.setenv("SARGS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SARGS_CA_CERT", str(confdir / "mitmproxy-ca-cert.pem"))
    monkeypatch.setenv("SARGS_CA_KEY", str(confdir / "mitmproxy-ca.pem"))
    assert main(["ca", "regenerate"]) == 2
    assert "institution's own CA" in capsys.readouterr().err
    assert not (tmp_path / "var" / "mitmproxy").exists()
    assert main(["ca", "show"]) == 1  # it cannot sign for the rest of the catalog
    assert "the institution's" in capsys.readouterr().out

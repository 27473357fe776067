"""``sargs ca …``: the gateway's interception CA (``proxy/ca.py``, docs/gateway.md).

- ``sargs ca show``: who the CA in place is, its fingerprint and expiry, the domains it
  may sign for, and the catalog domains it cannot (then: regenerate).
- ``sargs ca regenerate``: a new CA constrained to the catalog's domains now, in
  ``VAR_DIR/mitmproxy``; the previous files are kept beside it with a ``.previous``
  suffix. Browsers must trust the new certificate (the service's /ca page serves it) and
  the gateways must restart to use it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from proxy import ca
from proxy.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "ca", help="show or regenerate the gateway's interception CA",
        description="The CA the gateway signs platform certificates with. Sargs makes its "
        "own at first run, named after the institution and limited by X.509 name "
        "constraints to the catalog's domains. An institution-supplied CA "
        "(SARGS_CA_CERT/SARGS_CA_KEY) is used as given instead.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text, handler in (
        ("show", "the CA in place and the catalog domains it cannot sign for", _show),
        ("regenerate", "make a new CA for the catalog as it is now (keeps the old files "
         "as *.previous); restart the gateways and hand the new certificate out", _regenerate),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument("--policy", type=Path, help="policy directory (SARGS_POLICY)")
        action.set_defaults(handler=handler)


def _context(args: argparse.Namespace) -> tuple[Settings, Path, str, list[str]] | None:
    from proxy.policy.catalog import Catalog
    from proxy.policy.loader import PolicyError, load

    settings = Settings(**({"policy": args.policy} if args.policy else {}))
    try:
        policy = load(settings.policy).policy
    except PolicyError as exc:
        print(f"sargs ca: the policy cannot be used:\n{exc}", file=sys.stderr)
        return None
    confdir = (settings.var_dir / "mitmproxy").resolve()
    return settings, confdir, policy.institution.name, Catalog(policy.platforms).domains()


def _show(args: argparse.Namespace) -> int:
    context = _context(args)
    if context is None:
        return 1
    settings, confdir, _, domains = context
    if settings.ca_cert is not None:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(settings.ca_cert.read_bytes())
        source = f"{settings.ca_cert} (the institution's, SARGS_CA_CERT)"
    else:
        found = ca.read_cert(confdir)
        if found is None:
            print(f"no CA yet in {confdir}: `sargs run` makes one, or `sargs ca regenerate`")
            return 1
        cert, source = found, str(confdir / ca.CERT_FILE)
    permitted = ca.permitted_domains(cert)
    missing = ca.missing_domains(cert, domains)
    print(f"CA:          {cert.subject.rfc4514_string()}")
    print(f"file:        {source}")
    print(f"SHA-256:     {ca.fingerprint(cert)}")
    print(f"valid until: {cert.not_valid_after_utc.date().isoformat()}")
    if permitted is None:
        print("may sign:    ANY name (no name constraints): a stolen key impersonates any "
              "site; `sargs ca regenerate` makes a constrained one")
    else:
        print(f"may sign:    {', '.join(permitted)} (and their sub-domains)")
    if missing:
        print(f"cannot sign: {', '.join(missing)} (in the catalog now): run `sargs ca "
              "regenerate`")
        return 1
    return 0


def _regenerate(args: argparse.Namespace) -> int:
    context = _context(args)
    if context is None:
        return 1
    settings, confdir, institution, domains = context
    if settings.ca_cert is not None:
        print("sargs ca: SARGS_CA_CERT names the institution's own CA; make a new one with "
              "your PKI (docs/gateway.md shows the name constraints to give it)",
              file=sys.stderr)
        return 2
    for name in (ca.KEY_FILE, ca.CERT_FILE, ca.CER_FILE):
        if (confdir / name).exists():
            shutil.copy2(confdir / name, confdir / f"{name}.previous")
    key, cert = ca.generate_ca(institution, domains)
    path = ca.write_ca(confdir, key, cert)
    print(f"new CA:   {cert.subject.rfc4514_string()}")
    print(f"file:     {path}")
    print(f"SHA-256:  {ca.fingerprint(cert)}")
    print(f"may sign: {', '.join(ca.permitted_domains(cert) or [])}")
    print("Next: restart the gateways, and have browsers trust the new certificate "
          f"({settings.public_service_url}/ca).")
    return 0

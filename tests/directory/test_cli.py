"""IT's tools against a real slapd and a real store: `sargs identity test|groups` and
`sargs user import`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.store import open_store, users
from tests.support.slapd import ROOT_DN, ROOT_PW, SUFFIX, Slapd


@pytest.fixture
def ldap_env(slapd: Slapd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Slapd:
    monkeypatch.delenv("SARGS_POLICY", raising=False)
    monkeypatch.setenv("SARGS_DATABASE_URL", f"sqlite:///{tmp_path / 'sargs.db'}")
    monkeypatch.setenv("SARGS_LDAP_URL", slapd.url)
    monkeypatch.setenv("SARGS_LDAP_BASE", SUFFIX)
    monkeypatch.setenv("SARGS_LDAP_BIND_DN", ROOT_DN)
    monkeypatch.setenv("SARGS_LDAP_BIND_PASSWORD", ROOT_PW)
    monkeypatch.setenv("SARGS_KERBEROS_REALMS", '["EXAMPLE.TEST"]')
    return slapd


def test_identity_test_shows_how_a_user_resolves(
    ldap_env: Slapd, capsys: pytest.CaptureFixture[str]
) -> None:
    anna = ldap_env.add_user("anna")
    inner = ldap_env.add_group("press-office", [anna])
    # The example policy maps CN=Sargs Communicators under another tree (DC=gov,DC=lv):
    # a group of that name here is not it. It maps sargs-interns by name.
    ldap_env.add_group("Sargs Communicators", [inner])
    ldap_env.add_group("sargs-interns", [anna])
    assert main(["identity", "test", "anna@EXAMPLE.TEST"]) == 0
    out = capsys.readouterr().out
    assert "principal: anna@EXAMPLE.TEST" in out
    assert f"account:   anna  (uid=anna,ou=people,{SUFFIX})" in out
    assert "press-office" in out
    assert "roles:     intern" in out  # the DN mapping names another tree
    assert "source:    directory" in out

    assert main(["identity", "test", "ghost"]) == 0
    assert "no such account in the directory" in capsys.readouterr().out
    assert main(["identity", "test", "anna@OTHER.TEST"]) == 0
    assert "not in SARGS_KERBEROS_REALMS" in capsys.readouterr().out

    ldap_env.stop()
    assert main(["identity", "test", "anna"]) == 2
    assert "directory unreachable" in capsys.readouterr().out


def test_identity_groups_counts_users_through_nesting(
    ldap_env: Slapd, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = (ldap_env.add_user(n) for n in ("a", "b", "c"))
    team = ldap_env.add_group("team", [a, b])
    ldap_env.add_group("sargs-interns", [team, c, a])
    assert main(["identity", "groups"]) == 0
    rows = [line.split("  ") for line in capsys.readouterr().out.splitlines()]
    cells = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    assert ["sargs-interns", "intern", "3"] in cells
    assert ["CN=Sargs Communicators,OU=Groups,DC=example,DC=gov,DC=lv", "communicator",
            "not found"] in cells


def test_user_import_checks_every_row_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'sargs.db'}"
    monkeypatch.setenv("SARGS_DATABASE_URL", url)
    monkeypatch.delenv("SARGS_POLICY", raising=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,roles,password\nanna,staff,Riga-2026\nbad:name,staff,x\n"
                   "karlis,stafff,x\nanna,staff,y\n")
    assert main(["user", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: name:" in err
    assert f"{bad}:4: roles: unknown role 'stafff'" in err
    assert f"{bad}:5: name: 'anna' appears twice" in err
    store = open_store(url)
    assert users.list_users(store) == []  # nothing half-imported

    good = tmp_path / "good.csv"
    good.write_text("name,roles,email,department,password\n"
                    "anna,staff;approver,anna@example.lv,press,Riga-2026\n"
                    "karlis,intern,,,\n")
    out_file = tmp_path / "passwords.csv"
    assert main(["user", "import", str(good), "--passwords-out", str(out_file)]) == 0
    assert "imported 2 new user(s)" in capsys.readouterr().out
    assert users.verify_password(store, "anna", "Riga-2026") is not None
    generated = out_file.read_text().splitlines()[1].split(",")
    assert generated[0] == "karlis"
    assert users.verify_password(store, "karlis", generated[1]) is not None
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600

    assert main(["user", "import", str(good)]) == 1  # exists: refused without --update
    capsys.readouterr()
    again = tmp_path / "again.csv"
    again.write_text("name,roles\nanna,staff\n")
    assert main(["user", "import", str(again), "--update"]) == 0
    anna = users.get_user(store, "anna")
    assert anna is not None
    assert anna.roles == ("staff",)
    store.close()

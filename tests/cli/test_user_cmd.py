from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.store import audit, open_store, users


@pytest.fixture(autouse=True)
def database(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SARGS_DATABASE_URL", store_url)
    monkeypatch.setenv("SARGS_VAR_DIR", str(tmp_path))  # the audit key goes here
    monkeypatch.delenv("SARGS_POLICY", raising=False)
    return store_url


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str, tty: bool = False) -> None:
    stream = io.StringIO(text)
    stream.isatty = lambda: tty  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", stream)


def _login(url: str, name: str, password: str) -> users.User | None:
    store = open_store(url)
    try:
        return users.verify_password(store, name, password)
    finally:
        store.close()


def test_add_list_and_login(database: str, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "Riga-2026\n")
    assert main(["user", "add", "anna", "--role", "staff", "--role", "approver",
                 "--email", "anna@example.lv", "--password-stdin"]) == 0
    assert "added anna (staff, approver)" in capsys.readouterr().out
    assert main(["user", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ROLES", "EMAIL", "DEPARTMENT"]
    assert lines[1].split() == ["anna", "staff,approver", "anna@example.lv"]
    user = _login(database, "anna", "Riga-2026")
    assert user is not None
    assert user.roles == ("staff", "approver")
    assert _login(database, "anna", "Riga-2026\n") is None


def test_unknown_role_is_refused_with_the_valid_ones(database: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "pw\n")
    assert main(["user", "add", "anna", "--role", "staf", "--password-stdin"]) == 1
    err = capsys.readouterr().err
    assert "unknown role 'staf'" in err
    assert "staff" in err
    assert "approver" in err
    assert "communicator" in err
    assert main(["user", "list"]) == 0
    assert "anna" not in capsys.readouterr().out


def test_interactive_password_asked_twice(database: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "", tty=True)
    answers = iter(["first", "second", "same", "same"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "add", "anna", "--role", "staff"]) == 1
    assert "do not match" in capsys.readouterr().err
    assert main(["user", "add", "anna", "--role", "staff"]) == 0
    assert _login(database, "anna", "same") is not None


def test_no_terminal_needs_password_stdin(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "pw\n", tty=False)
    assert main(["user", "add", "anna", "--role", "staff"]) == 1
    assert "--password-stdin" in capsys.readouterr().err


def test_passwd_roles_remove(database: str, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "old\n")
    assert main(["user", "add", "anna", "--role", "staff", "--password-stdin"]) == 0
    _stdin(monkeypatch, "new\n")
    assert main(["user", "passwd", "anna", "--password-stdin"]) == 0
    assert _login(database, "anna", "old") is None
    assert _login(database, "anna", "new") is not None
    assert main(["user", "roles", "anna", "--role", "communicator", "--role", "admin"]) == 0
    assert main(["user", "list", "--role", "admin"]) == 0
    assert "communicator,admin" in capsys.readouterr().out
    assert main(["user", "remove", "anna"]) == 0
    assert main(["user", "remove", "anna"]) == 1
    assert "no user 'anna'" in capsys.readouterr().err
    assert _login(database, "anna", "new") is None
    store = open_store(database)
    try:
        kinds = [e.kind for e in audit.query(store, user="anna", newest_first=False)]
        actors = {e.actor for e in audit.query(store, user="anna")}
    finally:
        store.close()
    assert kinds == ["user-add", "user-password", "user-roles", "user-remove"]
    assert all(a is not None and a.startswith("cli") for a in actors)


def test_duplicate_user_refused(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, "pw\n")
    assert main(["user", "add", "anna", "--role", "staff", "--password-stdin"]) == 0
    _stdin(monkeypatch, "pw\n")
    assert main(["user", "add", "anna", "--role", "staff", "--password-stdin"]) == 1
    assert "exists already" in capsys.readouterr().err


def test_logout_ends_every_session_of_a_user(database: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import timedelta

    from proxy.store import sessions

    store = open_store(database, audit_key_file=tmp_path / "audit.keys")
    try:
        users.add_user(store, "anna", "pw", ["staff"])
        token, _ = sessions.start(store, "anna", timedelta(hours=1))
        assert sessions.find(store, token) is not None
        assert main(["user", "logout", "anna"]) == 0
        assert "ended 1 session(s) of anna" in capsys.readouterr().out
        assert sessions.find(store, token) is None
        assert audit.query(store, kind="logout")[0].details == {
            "everywhere": True, "sessions_ended": 1}
    finally:
        store.close()

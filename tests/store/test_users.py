from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from proxy.store import AlreadyExists, InvalidInput, NotFound, audit, users
from proxy.store.db import Store, open_store
from tests.store.conftest import FAST


def test_add_get_list_remove(store: Store) -> None:
    added = users.add_user(store, "anna", "s3cret", ["staff", "approver"],
                           email="anna@example.lv", department="Press")
    users.add_user(store, "bruno", "pw", ["communicator"])
    got = users.get_user(store, "anna")
    assert got == added
    assert got is not None
    assert got.roles == ("staff", "approver")
    assert got.email == "anna@example.lv"
    assert got.department == "Press"
    assert [u.name for u in users.list_users(store)] == ["anna", "bruno"]
    assert [u.name for u in users.list_users(store, role="approver")] == ["anna"]
    users.remove_user(store, "anna", actor="admin")
    assert users.get_user(store, "anna") is None
    with pytest.raises(NotFound):
        users.remove_user(store, "anna")


def test_duplicate_and_bad_input_refused(store: Store) -> None:
    users.add_user(store, "anna", "pw", ["staff"])
    with pytest.raises(AlreadyExists):
        users.add_user(store, "anna", "other", ["staff"])
    with pytest.raises(InvalidInput) as bad_name:
        users.add_user(store, "an:na", "pw", ["staff"])
    assert bad_name.value.field == "name"
    with pytest.raises(InvalidInput) as no_roles:
        users.add_user(store, "carl", "pw", [])
    assert no_roles.value.field == "roles"
    with pytest.raises(InvalidInput) as no_password:
        users.add_user(store, "carl", "", ["staff"])
    assert no_password.value.field == "password"


def test_verify_password(store: Store) -> None:
    users.add_user(store, "anna", "correct horse", ["staff"])
    user = users.verify_password(store, "anna", "correct horse")
    assert user is not None
    assert user.name == "anna"
    assert user.roles == ("staff",)
    assert users.verify_password(store, "anna", "wrong") is None
    assert users.verify_password(store, "nobody", "correct horse") is None
    assert users.verify_password(store, "anna", "") is None


def test_password_and_roles_change(store: Store) -> None:
    users.add_user(store, "anna", "old", ["staff"])
    users.set_password(store, "anna", "new")
    assert users.verify_password(store, "anna", "old") is None
    assert users.verify_password(store, "anna", "new") is not None
    users.set_roles(store, "anna", ["expert", "approver", "expert"])
    got = users.get_user(store, "anna")
    assert got is not None
    assert got.roles == ("expert", "approver")
    with pytest.raises(NotFound):
        users.set_roles(store, "ghost", ["staff"])
    with pytest.raises(NotFound):
        users.set_password(store, "ghost", "pw")


def test_rehash_when_parameters_change(store_url: str, store: Store) -> None:
    users.add_user(store, "anna", "pw", ["staff"])
    with store.read() as conn:
        old = conn.exec_driver_sql("SELECT password_hash FROM users").scalar_one()
    stronger = open_store(store_url, hasher=PasswordHasher(time_cost=2, memory_cost=2048,
                                                          parallelism=1))
    try:
        assert users.verify_password(stronger, "anna", "pw") is not None
        with stronger.read() as conn:
            new = conn.exec_driver_sql("SELECT password_hash FROM users").scalar_one()
        assert new != old
        assert "t=2" in new
        # the new hash still verifies, with no further rehash
        assert users.verify_password(stronger, "anna", "pw") is not None
        assert not stronger.hasher.check_needs_rehash(new)
    finally:
        stronger.close()
    assert FAST.check_needs_rehash(new)


def test_user_changes_are_audited_without_passwords(store: Store) -> None:
    users.add_user(store, "anna", "hunter2", ["staff"], actor="root")
    users.set_password(store, "anna", "hunter3", actor="root")
    users.set_roles(store, "anna", ["expert"], actor="root")
    users.remove_user(store, "anna", actor="root")
    entries = audit.query(store, user="anna", newest_first=False)
    assert [e.kind for e in entries] == ["user-add", "user-password", "user-roles",
                                        "user-remove"]
    assert all(e.actor == "root" for e in entries)
    assert "hunter" not in repr(entries)

"""Groups, nesting, primary groups and disabled accounts against a real slapd."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proxy.directory.entries import filetime_expired, normalize_dn, primary_group_sid
from proxy.directory.ldap import Directory, DirectoryConfig, DirectoryUnavailable
from proxy.directory.roles import GroupRoles
from tests.support.slapd import GROUPS, ROOT_DN, ROOT_PW, SUFFIX, Slapd


def directory(slapd: Slapd, **overrides: object) -> Directory:
    config = {"url": slapd.url, "base": SUFFIX, "bind_dn": ROOT_DN, "bind_password": ROOT_PW,
              "timeout": 2.0, **overrides}
    return Directory(DirectoryConfig(**config))  # type: ignore[arg-type]


def names(account: object) -> set[str]:
    return {g.name for g in account.groups}  # type: ignore[attr-defined]


def test_direct_nested_and_primary_groups(slapd: Slapd) -> None:
    alice = slapd.add_user("alice", gid=6000)
    slapd.add_posix_group("staff-primary", 6000)
    inner = slapd.add_group("press", [alice])
    middle = slapd.add_group("communications", [inner])
    slapd.add_group("all-staff", [middle])
    slapd.add_group("unrelated", [slapd.add_user("bob")])

    account = directory(slapd).lookup("alice")

    assert account is not None
    assert account.name == "alice"
    assert account.dn == alice
    assert names(account) == {"press", "communications", "all-staff", "staff-primary"}
    assert account.disabled is None
    assert not account.truncated


def test_a_group_cycle_ends_and_depth_is_bounded(slapd: Slapd) -> None:
    alice = slapd.add_user("alice")
    a = slapd.add_group("a", [alice])
    b = slapd.add_group("b", [a])
    slapd.modify(a, "add: member", f"member: {b}")  # a ∋ b ∋ a
    assert names(directory(slapd).lookup("alice")) == {"a", "b"}

    chain = a
    for i in range(5):
        chain = slapd.add_group(f"level{i}", [chain])
    shallow = directory(slapd, max_depth=3).lookup("alice")
    assert shallow is not None
    assert shallow.truncated
    assert "level4" not in names(shallow)


def test_unknown_and_ambiguous_accounts_are_none(slapd: Slapd) -> None:
    slapd.add_user("alice")
    assert directory(slapd).lookup("nobody") is None
    # A filter injection through the account name finds nobody, not everybody.
    assert directory(slapd).lookup("*") is None
    assert directory(slapd).lookup("alice)(uid=*") is None


def test_disabled_and_expired_accounts(slapd: Slapd) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).timestamp() // 86400
    slapd.add_user("gone", extra=[f"shadowExpire: {int(yesterday)}"])
    slapd.add_user("later", extra=[f"shadowExpire: {int(yesterday) + 30}"])
    slapd.add_user("flagged", extra=["employeeType: disabled"])

    gone = directory(slapd).lookup("gone")
    assert gone is not None
    assert gone.disabled == "account expired (shadowExpire)"
    later = directory(slapd).lookup("later")
    assert later is not None
    assert later.disabled is None

    filtered = directory(slapd, disabled_filter="(employeeType=disabled)")
    flagged = filtered.lookup("flagged")
    assert flagged is not None
    assert flagged.disabled == "account disabled (disabled_filter)"
    assert filtered.lookup("later").disabled is None  # type: ignore[union-attr]


def test_unreachable_directory_and_wrong_bind_raise(slapd: Slapd) -> None:
    slapd.add_user("alice")
    with pytest.raises(DirectoryUnavailable, match="bind"):
        directory(slapd, bind_password="wrong").lookup("alice")
    slapd.stop()
    with pytest.raises(DirectoryUnavailable):
        directory(slapd).lookup("alice")


def test_roles_from_mapped_groups_by_dn_and_name(slapd: Slapd) -> None:
    alice = slapd.add_user("alice")
    press = slapd.add_group("press", [alice])
    slapd.add_group("approvers", [press])
    slapd.add_group("ignored", [alice])
    mapping = GroupRoles({
        f"CN=Press, OU=Groups, {SUFFIX.upper()}": ["communications"],  # DN, other spelling
        "APPROVERS": ["approver"],  # a name, any case
        f"cn=absent,{GROUPS}": ["staff"],
    })
    resolved = mapping.resolve(directory(slapd).lookup("alice"))
    assert resolved.roles == {"communications", "approver"}
    assert resolved.ignored is None

    slapd.add_user("carol")
    nobody = mapping.resolve(directory(slapd).lookup("carol"))
    assert nobody.roles == frozenset()
    assert nobody.ignored == "in no mapped group"


def test_dn_normalisation_and_sid_arithmetic() -> None:
    assert normalize_dn("CN=Sargs Staff , OU=Groups,DC=Example") == (
        "cn=sargs staff,ou=groups,dc=example"
    )
    with pytest.raises(ValueError, match="not a DN"):
        normalize_dn("not a dn")
    # S-1-5-21-1-2-3-1104 → primary group RID 513 (Domain Users): S-1-5-21-1-2-3-513.
    sid = bytes([1, 5, 0, 0, 0, 0, 0, 5]) + b"".join(
        n.to_bytes(4, "little") for n in (21, 1, 2, 3, 1104)
    )
    assert primary_group_sid(sid, 513) == sid[:-4] + (513).to_bytes(4, "little")
    with pytest.raises(ValueError, match="not a SID"):
        primary_group_sid(b"\x01\x05", 513)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert not filetime_expired(0, now)
    assert not filetime_expired(0x7FFFFFFFFFFFFFFF, now)
    past = int((now.timestamp() - 60) * 10_000_000) + 116_444_736_000_000_000
    assert filetime_expired(past, now)
    assert not filetime_expired(past + 120 * 10_000_000, now)

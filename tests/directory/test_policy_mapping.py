"""``identity.directory_groups`` in the policy: `sargs policy check` names file, line and
field for a group DN that does not parse and for a role that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.policy.loader import PolicyError, load

POLICY = """\
name: base
version: "1"
institution: {name: Base}
platforms:
  x: {name: X, domains: [x.com]}
roles:
  staff: {name: Staff}
  approver: {name: Approver}
identity:
  sources: [negotiate, basic, ip]
  directory_groups:
"""


def policy(tmp_path: Path, *lines: str) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY + "".join(f"    {line}\n" for line in lines))
    return tmp_path


def test_a_valid_mapping_loads(tmp_path: Path) -> None:
    loaded = load(policy(tmp_path, '"CN=Staff,OU=Groups,DC=example,DC=org": [staff]',
                         "approvers: [approver, staff]"))
    assert loaded.policy.identity.sources == ["negotiate", "basic", "ip"]
    assert loaded.policy.identity.directory_groups["approvers"] == ["approver", "staff"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"CN=Staff,,DC=example": [staff]', "policy.yaml:13: identity.directory_groups"),
        ('"=Staff,DC=example": [staff]', "is not a DN"),
        ("approvers: [aprover]", "unknown role 'aprover' for group 'approvers'"),
    ],
)
def test_mapping_errors_name_the_line(tmp_path: Path, line: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    directory = policy(tmp_path, "ok: [staff]", line)
    with pytest.raises(PolicyError) as info:
        load(directory)
    assert message in str(info.value)
    with pytest.raises(SystemExit) as exited:
        main(["policy", "check", str(directory)])
    assert exited.value.code == 1
    assert message in capsys.readouterr().err

"""The loader: errors name file:line: field; extends merges; !replace replaces; CLI output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.policy.loader import PolicyError, load
from proxy.settings import ROOT

EXAMPLE = ROOT / "policies" / "institutions" / "example"


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


BASE = """\
name: base
version: "1"
institution: {name: Base}
platforms:
  x: {name: X, domains: [x.com]}
  tiktok: {name: TikTok, domains: [tiktok.com]}
identity:
  sources: [basic, ip]
roles:
  staff:
    name: Staff
    platforms:
      tiktok: block
"""


def test_the_example_policy_loads() -> None:
    loaded = load(EXAMPLE)
    assert loaded.policy.institution.timezone == "Europe/Riga"
    assert {"communicator", "head", "expert", "staff", "intern", "it-security"} <= set(
        loaded.policy.roles
    )
    assert len(loaded.policy.platforms) >= 16
    assert loaded.version.startswith(loaded.policy.version + "+")


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    write(tmp_path, "policy.yaml", BASE.replace("tiktok: block", "tiktok: alow"))
    with pytest.raises(PolicyError) as info:
        load(tmp_path)
    text = str(info.value)
    assert "policy.yaml:13: roles.staff.platforms.tiktok" in text
    assert "'alow' is not one of allow, read, block" in text


def test_unknown_fields_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "policy.yaml", BASE)
    write(tmp_path, "extra.yaml", "institution:\n  timezon: Europe/Riga\n")
    with pytest.raises(PolicyError) as info:
        load(tmp_path)
    assert "extra.yaml:2: institution.timezon: unknown field" in str(info.value)


def test_unknown_platform_references_name_their_line(tmp_path: Path) -> None:
    write(tmp_path, "policy.yaml", BASE + "      myspace: allow\n")
    with pytest.raises(PolicyError) as info:
        load(tmp_path)
    assert "policy.yaml:14: roles.staff.platforms.myspace: unknown platform" in str(info.value)


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    write(tmp_path, "policy.yaml", BASE + "roles: [\n")
    with pytest.raises(PolicyError) as info:
        load(tmp_path)
    assert "policy.yaml:" in str(info.value)
    assert "not valid YAML" in str(info.value)


def test_extends_merges_maps_and_extends_lists(tmp_path: Path) -> None:
    write(tmp_path / "base", "policy.yaml", BASE)
    write(tmp_path / "inst", "policy.yaml", """\
extends: ../base
version: "2"
platforms:
  x: {domains: [twitter.com]}
identity:
  sources: !replace [ip]
roles:
  staff:
    platforms:
      x: read
""")
    policy = load(tmp_path / "inst").policy
    assert policy.version == "2"
    assert policy.platforms["x"].domains == ["x.com", "twitter.com"]  # lists extend
    assert policy.identity.sources == ["ip"]  # !replace replaces
    assert set(policy.roles["staff"].platforms) == {"tiktok", "x"}  # maps merge
    assert policy.name == "base"


def test_errors_in_an_overlay_name_the_overlay(tmp_path: Path) -> None:
    write(tmp_path / "base", "policy.yaml", BASE)
    write(tmp_path / "inst", "policy.yaml", "extends: ../base\nroles:\n  staff:\n"
                                            "    default: sometimes\n")
    with pytest.raises(PolicyError) as info:
        load(tmp_path / "inst")
    assert "inst/policy.yaml:4: roles.staff.default" in str(info.value)


def test_policy_check_and_matrix_commands(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    assert main(["policy", "check", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.startswith("ok: Example Ministry")

    assert main(["policy", "matrix", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1]
    assert "staff" in header
    assert "intern" in header
    vk = next(line for line in out.splitlines() if line.startswith("vk"))
    assert vk.split()[1:] == ["DENY"] * 6
    assert "allow*/read" in out  # staff's windows on facebook

    assert main(["policy", "matrix", str(EXAMPLE), "--json",
                 "--at", "2026-11-23T12:30:00"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["matrix"]["staff"]["facebook"] == "allow -m"  # lunch, media blocked
    assert data["matrix"]["intern"]["linkedin"] == "read -m"

    write(tmp_path, "policy.yaml", BASE.replace("tiktok: block", "tiktok: alow"))
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "check", str(tmp_path)])
    assert exit_info.value.code == 1
    assert "'alow' is not one of" in capsys.readouterr().err

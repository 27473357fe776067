"""docs/configuration.md lists every setting with its default."""

from __future__ import annotations

import re

import pytest

from proxy.settings import ROOT, Settings

DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_with_its_default(name: str) -> None:
    field = Settings.model_fields[name]
    row = re.search(rf"^\| `SARGS_{name.upper()}` \| `{name}` \| (.+?) \|", DOC, re.MULTILINE)
    assert row is not None, f"docs/configuration.md has no row for SARGS_{name.upper()}"
    default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    cell = row.group(1)
    if default in (None, "", []) or hasattr(default, "get_secret_value"):
        assert cell in ("(empty)", "`[]`"), cell
    elif name != "policy":
        assert f"`{default}`" in cell, f"SARGS_{name.upper()}: default {default!r}, doc {cell}"


def test_example_toml_is_valid() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "scripts/deploy/sargs.toml").read_text(encoding="utf-8"))
    settings = Settings(**data)
    assert settings.gateway_list == ["gw1.example.gov.lv:3128", "gw2.example.gov.lv:3128"]

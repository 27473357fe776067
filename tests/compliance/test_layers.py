"""The pure cores import in one direction: proxy.policy may use proxy.compliance (its
``compliance:`` schema), never the other way round; neither imports mitmproxy or aiohttp."""

from __future__ import annotations

import ast
from pathlib import Path

from proxy.settings import ROOT


def _imports(package: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / "proxy" / package).glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        out[Path(path).name] = names
    return out


def test_compliance_does_not_import_policy_nor_the_adapters() -> None:
    for module, names in _imports("compliance").items():
        bad = {n for n in names if n.split(".")[:2] == ["proxy", "policy"]
               or n.split(".")[0] in ("mitmproxy", "aiohttp")}
        assert not bad, f"proxy/compliance/{module} imports {sorted(bad)}"


def test_policy_does_not_import_the_engine() -> None:
    for module, names in _imports("policy").items():
        engine = {n for n in names if n.startswith("proxy.compliance")} - {
            "proxy.compliance.config"
        }
        assert not engine, f"proxy/policy/{module} imports {sorted(engine)}"

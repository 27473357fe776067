"""The extension's package: manifest for Chromium and Firefox, matches, texts, icons."""

from __future__ import annotations

import json
import re
import runpy

from proxy.policy.loader import load
from proxy.settings import ROOT, Settings

EXTENSION = ROOT / "extension"


def test_manifest_matches_cover_every_catalog_domain() -> None:
    manifest = json.loads((EXTENSION / "manifest.json").read_text(encoding="utf-8"))
    (scripts,) = manifest["content_scripts"]
    assert scripts["js"][0] == "config.js"  # then the guard's parts (proxy/guardscript.py)
    assert scripts["js"][-1] == "guard/main.js"
    matches = set(scripts["matches"])
    policy = load(Settings().policy).policy
    for platform in policy.platforms.values():
        for domain in platform.domains:
            assert f"*://{domain}/*" in matches, f"run scripts/extension-matches ({domain})"
            assert f"*://*.{domain}/*" in matches, f"run scripts/extension-matches ({domain})"


def test_manifest_works_for_chromium_and_firefox() -> None:
    manifest = json.loads((EXTENSION / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["manifest_version"] == 3
    assert manifest["background"]["service_worker"] == "background.js"
    assert manifest["background"]["scripts"][-1] == "background.js"
    gecko = manifest["browser_specific_settings"]["gecko"]
    assert gecko["id"]
    assert gecko["strict_min_version"]
    assert "storage" in manifest["permissions"]
    schema = json.loads((EXTENSION / manifest["storage"]["managed_schema"]).read_text())
    assert set(schema["properties"]) == {"backend", "lang", "account"}
    for size, path in manifest["icons"].items():
        data = (EXTENSION / path).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert int.from_bytes(data[16:20], "big") == int(size)


def test_extension_texts_exist_in_four_languages() -> None:
    english = json.loads((EXTENSION / "_locales/en/messages.json").read_text(encoding="utf-8"))
    used = set()
    for name in ("popup.js", "options.js"):
        source = (EXTENSION / name).read_text(encoding="utf-8")
        used |= {key for key in english if f"t.{key}" in source}
    assert used, "the pages use the extension's texts"
    for lang in ("lv", "sv", "sq"):
        other = json.loads((EXTENSION / f"_locales/{lang}/messages.json").read_text("utf-8"))
        assert set(other) == set(english), lang
        assert all(other[k]["message"].strip() for k in other), lang


def test_icons_are_regenerated_identically() -> None:
    # The generator is deterministic: the committed icons are what the script draws.
    module = runpy.run_path(str(ROOT / "scripts" / "extension-icons"))
    assert module["png"](16) == (EXTENSION / "icons/16.png").read_bytes()


def test_the_guards_own_words_exist_in_four_languages() -> None:
    source = (EXTENSION / "guard" / "i18n.js").read_text(encoding="utf-8")
    blocks = dict(re.findall(r"\n    (en|lv|sv|sq): \{\n(.*?)\n    \},", source, re.S))
    assert set(blocks) == {"en", "lv", "sv", "sq"}
    keys = {lang: re.findall(r"^      (\w+):", body, re.M) for lang, body in blocks.items()}
    assert len(keys["en"]) > 15
    for lang in ("lv", "sv", "sq"):
        assert keys[lang] == keys["en"], lang

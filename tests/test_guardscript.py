"""proxy/guardscript.py: the guard's parts, in the manifest's order, read again on change."""

from __future__ import annotations

import json
import os
from pathlib import Path

from proxy.guardscript import GuardScript, parts


def extension(tmp_path: Path, names: list[str]) -> Path:
    (tmp_path / "guard").mkdir(exist_ok=True)
    manifest = {"content_scripts": [{"matches": ["*://x.com/*"], "js": ["config.js", *names]}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for name in names:
        (tmp_path / name).write_text(f"/* {name} */")  # no final newline: join adds one
    return tmp_path


def test_parts_in_the_manifests_order_and_reloaded(tmp_path: Path) -> None:
    ext = extension(tmp_path, ["guard/b.js", "guard/a.js"])
    assert [p.name for p in parts(ext)] == ["b.js", "a.js"]  # config.js is the extension's
    script = GuardScript(extension=ext)
    body, etag = script.get() or (b"", "")
    assert body == b"/* guard/b.js */\n/* guard/a.js */\n"
    (ext / "guard/a.js").write_text("/* changed, longer */")
    os.utime(ext / "guard/a.js", ns=(1, 1))
    again = script.get()
    assert again is not None
    assert again[0].endswith(b"/* changed, longer */\n")
    assert again[1] != etag
    extension(tmp_path, ["guard/a.js"])  # the manifest drops a part
    assert (script.get() or (b"", ""))[0] == b"/* guard/a.js */\n"


def test_a_missing_part_is_none_not_half_a_script(tmp_path: Path) -> None:
    ext = extension(tmp_path, ["guard/a.js", "guard/b.js"])
    (ext / "guard/b.js").unlink()
    assert GuardScript(extension=ext).get() is None
    (ext / "manifest.json").write_text("{not json")
    assert GuardScript(extension=ext).get() is None

"""The compose guard as one script: ``extension/guard/*.js`` joined in the manifest's order.

The guard is written as a few small classic scripts, each with one job. The extension
loads them as its content scripts, in the order ``extension/manifest.json`` lists them;
the service (``GET /static/compose-guard.js``) and the gateway
(``GET /__sargs/static/compose-guard.js``) serve them joined, in that same order, as the
one script the contract names. The manifest is the only list of the parts, and nothing is
generated or committed twice (docs/injection.md, "One script from small parts").
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from proxy.settings import ROOT

EXTENSION = ROOT / "extension"
PARTS_DIR = "guard/"


def parts(extension: Path = EXTENSION) -> list[Path]:
    """The guard's files, in the order the manifest's content script lists them."""
    manifest = json.loads((extension / "manifest.json").read_text(encoding="utf-8"))
    (scripts,) = manifest["content_scripts"]
    return [extension / name for name in scripts["js"] if name.startswith(PARTS_DIR)]


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


def join(paths: Sequence[Path]) -> bytes:
    """The files' bytes one after the other, each ending with a newline."""
    chunks = []
    for path in paths:
        data = path.read_bytes()
        chunks.append(data if data.endswith(b"\n") else data + b"\n")
    return b"".join(chunks)


class GuardScript:
    """The joined script and its ETag, read again when the parts change.

    ``paths`` None means the manifest's parts (``parts()``, looked up on each call, so an
    edited manifest counts too); the gateway's tests give one file of their own.
    """

    def __init__(self, paths: Sequence[Path] | None = None, extension: Path = EXTENSION) -> None:
        self.paths = list(paths) if paths is not None else None
        self.extension = extension
        self._key: tuple[tuple[Path, int, int], ...] = ()
        self.body = b""
        self.etag = ""

    def get(self) -> tuple[bytes, str] | None:
        """``(body, etag)``, or None when a part (or the manifest) cannot be read."""
        try:
            paths = self.paths if self.paths is not None else parts(self.extension)
            key = tuple((p, *_stamp(p)) for p in paths)
            if key != self._key:
                self.body = join(paths)
                self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
                self._key = key
        except (OSError, ValueError, KeyError):
            return None
        return self.body, self.etag

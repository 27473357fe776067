"""JSON-lines logs for a SIEM."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.logs import setup_logging
from proxy.settings import Settings


@pytest.fixture
def restore() -> Iterator[None]:
    log = logging.getLogger("sargs")
    handlers, level, propagate = list(log.handlers), log.level, log.propagate
    yield
    for h in log.handlers:
        if h not in handlers:
            log.removeHandler(h)
            h.close()
    log.setLevel(level)
    log.propagate = propagate


def test_every_line_is_one_json_object(tmp_path: Path, restore: None) -> None:
    path = tmp_path / "logs" / "sargs.jsonl"
    setup_logging(Settings(var_dir=tmp_path, log_file=path, log_level="INFO"))
    setup_logging(Settings(var_dir=tmp_path, log_file=path, log_level="INFO"))  # idempotent
    log = logging.getLogger("sargs.service")
    log.info("policy reloaded: %s -> %s", "a", "b")
    log.debug("not at INFO")
    logging.getLogger("sargs.decisions.test").info(
        "decision", extra={"event": {"event": "decision", "platform": "x", "action": "read"}}
    )
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["level"] == "info"
    assert first["logger"] == "sargs.service"
    assert first["message"] == "policy reloaded: a -> b"
    assert first["ts"].endswith("+00:00")
    assert second == {"ts": second["ts"], "event": "decision", "platform": "x", "action": "read"}
    assert third["level"] == "error"
    assert "ValueError: boom" in third["exception"]

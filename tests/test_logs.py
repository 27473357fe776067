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
    assert second == {"ts": second["ts"], "level": "info", "logger": "sargs.decisions.test",
                      "message": "decision", "event": "decision", "platform": "x",
                      "action": "read"}
    assert third["level"] == "error"
    assert "ValueError: boom" in third["exception"]


def test_facts_are_fields_of_their_own_never_text_in_the_message(
    tmp_path: Path, restore: None
) -> None:
    path = tmp_path / "sargs.jsonl"
    setup_logging(Settings(var_dir=tmp_path, log_file=path, log_level="INFO"))
    log = logging.getLogger("sargs.gateway.sync")
    log.warning("service unreachable; enforcing the bundle in force", extra={"event": {
        "event": "sync-unreachable", "service": "http://10.0.0.5:8080", "version": 42}})
    log.info("spooled", extra={"spool_depth": 3, "event": {"message": "not the message"}})
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["level"] == "warning"
    assert first["message"] == "service unreachable; enforcing the bundle in force"
    assert (first["event"], first["service"], first["version"]) == (
        "sync-unreachable", "http://10.0.0.5:8080", 42)
    assert second["spool_depth"] == 3
    assert second["message"] == "spooled"

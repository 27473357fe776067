"""The decision log's fast path: same lines as the logging path, batched, nothing lost."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.gateway import decisionlog
from proxy.gateway.decisionlog import LineHandler
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action
from proxy.settings import ROOT

SUBJECT = Subject("anna", frozenset({"staff", "expert"}), "basic")
DECISION = Decision(False, Action.block, "tiktok", Rule.role, "role staff blocks tiktok",
                    "staff", None, None)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """The decision logger with no handlers; restored afterwards."""
    log = decisionlog.log
    saved = (list(log.handlers), log.level, log.propagate)
    for handler in saved[0]:
        log.removeHandler(handler)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        log.addHandler(handler)
    log.setLevel(saved[1])
    log.propagate = saved[2]


def record(path: str = "/@someone") -> None:
    decisionlog.record(DECISION, SUBJECT, host="www.tiktok.com", method="GET", path=path,
                       kind=RequestKind.page, policy="2026.11-example+1a2b3c4d")


def test_fast_lines_equal_the_logging_path(logger: logging.Logger, tmp_path: Path) -> None:
    decisionlog.configure(tmp_path / "fast.jsonl")
    record("/@someone?draft=secret")
    logger.handlers[0].flush()
    stream = io.StringIO()
    slow = logging.StreamHandler(stream)  # any other handler: the LogRecord path
    slow.setFormatter(decisionlog.JsonFormatter())
    logger.addHandler(slow)
    record("/@someone?draft=secret")
    logger.handlers[0].flush()
    fast_lines = (tmp_path / "fast.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(fast_lines) == 2  # the file kept getting lines on the slow path too
    fast, slow_line = json.loads(fast_lines[0]), json.loads(stream.getvalue())
    assert list(fast) == list(slow_line)  # same fields, same order
    assert {k: v for k, v in fast.items() if k != "ts"} == {
        k: v for k, v in slow_line.items() if k != "ts"}
    assert fast["roles"] == ["expert", "staff"]
    assert fast["path"] == "/@someone"
    assert "secret" not in fast_lines[0]
    assert datetime.fromisoformat(fast["ts"]).tzinfo is not None


@pytest.mark.parametrize(
    "now",
    [1_795_420_800.0, 1_795_420_800.5, 1_795_420_800.123456, 1_795_420_800.9999996,
     1_795_420_800.0000004, 1_795_420_859.999999],
)
def test_timestamps_match_datetime(now: float) -> None:
    assert decisionlog._timestamp(now) == datetime.fromtimestamp(now, UTC).isoformat()


async def test_on_a_loop_lines_wait_for_the_turn_and_arrive_in_order(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    handler = LineHandler.to_file(path)
    try:
        for i in range(500):
            handler.write_line(json.dumps({"n": i}))
        assert path.read_text() == ""  # one write for the whole turn, not 500
        await asyncio.sleep(0)
        lines = path.read_text().splitlines()
        assert [json.loads(line)["n"] for line in lines] == list(range(500))
    finally:
        handler.close()


async def test_a_full_buffer_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    handler = LineHandler.to_file(path, flush_bytes=1000)
    try:
        line_size = len(json.dumps({"n": 10, "pad": "x" * 40})) + 1
        for i in range(100):
            handler.write_line(json.dumps({"n": i, "pad": "x" * 40}))
        written = path.read_text().splitlines()
        assert len(written) >= 100 - 1000 // line_size  # at most a buffer's worth waits
        await asyncio.sleep(0)
        assert len(path.read_text().splitlines()) == 100
    finally:
        handler.close()


async def test_close_writes_what_the_loop_never_flushed(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    handler = LineHandler.to_file(path)
    for i in range(10):
        handler.write_line(str(i))
    handler.close()  # before the loop ran the scheduled flush
    assert path.read_text().splitlines() == [str(i) for i in range(10)]
    await asyncio.sleep(0)  # the scheduled flush finds nothing and the file closed
    assert len(path.read_text().splitlines()) == 10


def test_without_a_loop_lines_are_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    handler = LineHandler.to_file(path)
    try:
        handler.write_line("main")
        worker = threading.Thread(target=handler.write_line, args=("thread",))
        worker.start()
        worker.join()
        assert path.read_text().splitlines() == ["main", "thread"]
    finally:
        handler.close()


def test_a_failing_disk_never_fails_the_request(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    def full(data: str) -> None:
        raise OSError(28, "No space left on device")

    logger.addHandler(LineHandler(full))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with caplog.at_level(logging.ERROR, logger="sargs.gateway"):
        record()  # no loop here: written (and failing) at once
    assert "decision log: write failed" in caplog.text


def test_a_clean_exit_loses_no_line(tmp_path: Path) -> None:
    """A gateway that stops normally (``sargs run`` on SIGINT/SIGTERM) keeps every line,
    even those still waiting for the event loop."""
    path = tmp_path / "d.jsonl"
    script = f"""
import asyncio
from pathlib import Path
from proxy.gateway import decisionlog
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action

decisionlog.configure(Path({str(path)!r}))
subject = Subject("anna", frozenset({{"staff"}}), "basic")
decision = Decision(True, Action.allow, "x", Rule.role, "ok", "staff", None, None)

async def main():
    for i in range(2000):
        decisionlog.record(decision, subject, host="x.com", method="GET", path=f"/{{i}}",
                           kind=RequestKind.page, policy="p")
    # the loop ends here: the last turn's lines were never flushed by it

asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["path"] for line in lines] == [f"/{i}" for i in range(2000)]


@pytest.mark.parametrize(
    ("user", "path", "grant"),
    [("anna", "/feed/", None), ("jānis", '/a"b\\c/ž', "g-1"), (None, "/\u2028/😀?q=1", None)],
)
def test_fast_line_is_exactly_what_json_dumps_writes(
    logger: logging.Logger, tmp_path: Path, user: str | None, path: str, grant: str | None
) -> None:
    decisionlog.configure(tmp_path / "d.jsonl")
    subject = Subject(user, frozenset({"staff", "communicator"}), "basic" if user else "ip")
    decision = Decision(True, Action.read, "x", Rule.read_only, "lasīt drīkst \"tikai\"",
                        "staff", grant, None)
    for _ in range(2):  # the second line comes from the cached parts
        decisionlog.record(decision, subject, host="x.com", method="POST", path=path,
                           kind=RequestKind.post, policy="p+1")
    logger.handlers[0].flush()
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").split("\n")
    assert lines[2:] == [""]
    for line in lines[:2]:
        ts = json.loads(line)["ts"]
        assert line == json.dumps({
            "ts": ts, "event": "decision", "user": user,
            "roles": ["communicator", "staff"], "source": subject.source, "platform": "x",
            "host": "x.com", "method": "POST", "path": path.split("?")[0], "kind": "post",
            "action": "read", "allowed": True, "rule": "read-only",
            "reason": "lasīt drīkst \"tikai\"", "role": "staff", "grant": grant,
            "policy": "p+1",
        }, ensure_ascii=False)


def test_cached_parts_follow_each_decision_and_subject_object(
    logger: logging.Logger, tmp_path: Path
) -> None:
    decisionlog.configure(tmp_path / "d.jsonl")
    allowed = Decision(True, Action.allow, "x", Rule.role, "yes", "staff", None, None)
    equal = Decision(True, Action.allow, "x", Rule.role, "yes", "staff", None, None)
    refused = Decision(False, Action.block, "x", Rule.role, "no", "staff", None, None)
    other = Subject("ilze", frozenset({"staff"}), "basic")
    expected = []
    for decision, subject in [(allowed, SUBJECT), (refused, SUBJECT), (equal, SUBJECT),
                              (allowed, other), (refused, other), (allowed, SUBJECT)]:
        decisionlog.record(decision, subject, host="x.com", method="GET", path="/",
                           kind=RequestKind.page, policy="p")
        expected.append((subject.user, decision.allowed, decision.reason))
    for _ in range(3):  # objects made and dropped: a later one may reuse an id
        decisionlog.record(
            Decision(True, Action.read, "x", Rule.role, "new", "staff", "g", None),
            Subject("temp", frozenset({"staff"})), host="x.com", method="GET", path="/",
            kind=RequestKind.page, policy="p")
        expected.append(("temp", True, "new"))
    logger.handlers[0].flush()
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    assert [(e["user"], e["allowed"], e["reason"]) for e in map(json.loads, lines)] == expected

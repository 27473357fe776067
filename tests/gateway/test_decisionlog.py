"""The decision log: one line per decided flow when it ends, as it really ended; batched
writes, the same line through any logging handler, nothing lost."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from proxy.gateway import decisionlog
from proxy.gateway.decisionlog import DecisionLog, LineHandler
from proxy.gateway.flowinfo import Hit, info
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


def flow(path: str = "/@someone", decision: Decision = DECISION, subject: Subject = SUBJECT,
         kind: RequestKind = RequestKind.page, method: str = "GET") -> http.HTTPFlow:
    """A flow as the access add-on leaves it, answered."""
    f = tflow.tflow(resp=True)
    f.request.method, f.request.host, f.request.path = method, "www.tiktok.com", path
    record = info(f)
    record.subject, record.decision, record.kind = subject, decision, kind
    record.platform, record.host = decision.platform, "www.tiktok.com"
    return f


def record(path: str = "/@someone") -> None:
    DecisionLog(lambda: "2026.11-example+1a2b3c4d").response(flow(path))


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
    assert fast["allowed"] is False
    assert fast["rule"] == "role"
    assert "secret" not in fast_lines[0]
    assert datetime.fromisoformat(fast["ts"]).tzinfo is not None


def test_a_post_refused_for_its_content_is_logged_refused_with_its_rules(
    logger: logging.Logger, tmp_path: Path
) -> None:
    decisionlog.configure(tmp_path / "d.jsonl")
    allowed = Decision(True, Action.allow, "x", Rule.role, "staff may post", "staff", None, None)
    post = flow("/i/api/graphql/CreateTweet", allowed, kind=RequestKind.post, method="POST")
    record = info(post)
    record.verdict, record.refused = "block", "content"
    record.findings = [Hit("personal-id", "block"), Hit("offensive", "warn")]
    post.response = http.Response.make(403, b"{}")
    log = DecisionLog(lambda: "p")
    log.response(post)
    log.error(post)  # a flow that ends twice is logged once
    logger.handlers[0].flush()
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["allowed"] is False
    assert (line["refused"], line["verdict"], line["status"]) == ("content", "block", 403)
    assert line["findings"] == [{"rule": "personal-id", "severity": "block"},
                                {"rule": "offensive", "severity": "warn"}]
    assert (line["method"], line["kind"], line["action"]) == ("POST", "post", "allow")


def test_flows_sargs_never_decided_are_not_logged(logger: logging.Logger, tmp_path: Path) -> None:
    decisionlog.configure(tmp_path / "d.jsonl")
    DecisionLog().response(tflow.tflow(resp=True))
    logger.handlers[0].flush()
    assert (tmp_path / "d.jsonl").read_text() == ""


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
from mitmproxy.test import tflow
from proxy.gateway import decisionlog
from proxy.gateway.flowinfo import info
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action

decisionlog.configure(Path({str(path)!r}))
subject = Subject("anna", frozenset({{"staff"}}), "basic")
decision = Decision(True, Action.allow, "x", Rule.role, "ok", "staff", None, None)
log = decisionlog.DecisionLog()

async def main():
    for i in range(2000):
        f = tflow.tflow(resp=True)
        f.request.path = f"/{{i}}"
        record = info(f)
        record.subject, record.decision, record.kind = subject, decision, RequestKind.page
        log.response(f)
    # the loop ends here: the last turn's lines were never flushed by it

asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["path"] for line in lines] == [f"/{i}" for i in range(2000)]

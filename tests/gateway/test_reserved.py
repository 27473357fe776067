"""The reserved path /__sargs/ on platform hosts: answered by the gateway, never forwarded
(proxy/gateway/reserved.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from proxy.gateway.flowinfo import FlowInfo, info
from proxy.gateway.reserved import Reserved
from proxy.policy.decide import Decision, RequestKind, Rule, Subject
from proxy.policy.model import Action
from proxy.runtime import Compiled


def no_policy() -> Compiled:
    raise AssertionError("serving the script needs no policy")


@pytest.fixture
async def addon(tmp_path: Path) -> AsyncIterator[Reserved]:
    script = tmp_path / "compose-guard.js"
    script.write_text("console.log('sargs v1');\n")
    reserved = Reserved(no_policy, script=script)
    with taddons.context(reserved):
        yield reserved


def allowed(kind: RequestKind = RequestKind.page, platform: str = "x") -> FlowInfo:
    return FlowInfo(
        subject=Subject("ilze", frozenset({"communicator"})), platform=platform, host="x.com",
        kind=kind, lang="lv",
        decision=Decision(True, Action.allow, platform, Rule.role, "ok", "communicator"),
    )


def reserved(method: str, path: str, headers: dict[str, str] | None = None) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.method = method
    flow.request.scheme, flow.request.host, flow.request.port = "https", "x.com", 443
    flow.request.path = path
    flow.request.headers.update(headers or {})
    flow.metadata["sargs"] = allowed(RequestKind.api)
    return flow


def test_script_is_served_with_etag_and_reloaded_when_changed(
    addon: Reserved, tmp_path: Path
) -> None:
    flow = reserved("GET", "/__sargs/static/compose-guard.js?v=1")
    addon.request(flow)
    assert flow.response is not None
    assert flow.response.status_code == 200
    assert flow.response.content == b"console.log('sargs v1');\n"
    assert flow.response.headers["Content-Type"].startswith("text/javascript")
    etag = flow.response.headers["ETag"]

    again = reserved("GET", "/__sargs/static/compose-guard.js", {"If-None-Match": etag})
    addon.request(again)
    assert again.response is not None
    assert again.response.status_code == 304

    (tmp_path / "compose-guard.js").write_text("console.log('sargs v2, longer');\n")
    changed = reserved("GET", "/__sargs/static/compose-guard.js", {"If-None-Match": etag})
    addon.request(changed)
    assert changed.response is not None
    assert changed.response.status_code == 200
    assert b"v2" in (changed.response.content or b"")
    assert changed.response.headers["ETag"] != etag


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/__sargs/", 404),
        ("GET", "/__sargs/../etc/passwd", 404),
        ("DELETE", "/__sargs/static/compose-guard.js", 405),
        ("GET", "/__sargs/api/v1/check", 405),
        ("OPTIONS", "/__sargs/api/v1/check", 204),
    ],
)
def test_reserved_path_never_reaches_the_platform(
    addon: Reserved, method: str, path: str, status: int
) -> None:
    flow = reserved(method, path, {"Origin": "https://x.com"})
    addon.request(flow)
    assert flow.response is not None
    assert flow.response.status_code == status
    assert info(flow).generated == "reserved"  # (so injection and streaming leave it alone)


def test_other_paths_and_hosts_are_left_alone(addon: Reserved) -> None:
    flow = reserved("GET", "/home")
    addon.request(flow)
    assert flow.response is None
    outside = tflow.tflow()
    outside.request.path = "/__sargs/static/compose-guard.js"
    addon.request(outside)  # not a platform host: not ours to answer
    assert outside.response is None

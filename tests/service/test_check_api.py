"""``POST /api/v1/check`` over a real aiohttp server: the contract, CORS, 413, 422."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from proxy.runtime import PolicyState
from proxy.service.app import create_app
from proxy.settings import ROOT, Settings

EXAMPLE = ROOT / "policies" / "institutions" / "example"
SUNDAY = "2026-11-22T12:00:00+02:00"


@pytest.fixture(scope="module")
def state() -> PolicyState:
    return PolicyState(EXAMPLE)


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path, state: PolicyState):
    settings = Settings(policy=EXAMPLE, var_dir=tmp_path, max_body_bytes=4096)
    return await aiohttp_client(create_app(settings, state))


async def test_contract(client) -> None:
    text = "👩‍💻 Rakstiet uz anna.berzina@gmail.com"
    resp = await client.post("/api/v1/check", json={
        "text": text, "account": "personal", "platform": "x", "attachments": [],
        "at": SUNDAY, "lang": "lv",
    })
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    body = await resp.json()
    assert body["verdict"] == "block"
    assert body["policy"].startswith("2026.11-example+")
    (finding,) = body["findings"]
    assert finding["rule"] == "personal-data"
    start = len("👩‍💻 Rakstiet uz ".encode("utf-16-le")) // 2
    assert (finding["start"], finding["end"]) == (start, start + len("anna.berzina@gmail.com"))
    assert "e-pasta" in finding["message"]
    assert finding["guideline"]


async def test_language_from_accept_language(client) -> None:
    resp = await client.post("/api/v1/check", json={"text": "idiot", "at": SUNDAY},
                             headers={"Accept-Language": "sq-AL,sq;q=0.9,en;q=0.5"})
    (finding,) = (await resp.json())["findings"]
    assert finding["message"].startswith("Kjo mund të kuptohet si fyese")


async def test_official_allowed_and_attachments(client) -> None:
    resp = await client.post("/api/v1/check", json={
        "text": "", "account": "official", "official_allowed": False, "at": SUNDAY,
        "attachments": [{"kind": "image"}],
    })
    body = await resp.json()
    assert body["verdict"] == "block"
    assert sorted(f["rule"] for f in body["findings"]) == [
        "copyright", "minors-consent", "official-account"
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": "x", "account": "boss"}, "account"),
        ({"text": "x", "at": "2026-11-23T10:00:00"}, "at"),
        ({"text": "x", "attachments": [{"kind": "pdf"}]}, "attachments.0.kind"),
        ({"account": "official"}, "text"),
        ({"text": "x", "platform": "myspace"}, "platform"),
        ({"text": "x", "lang": "de"}, "lang"),
        ({"text": "x", "draft": "y"}, "draft"),
    ],
)
async def test_invalid_fields_are_named(client, payload: dict[str, object], field: str) -> None:
    resp = await client.post("/api/v1/check", json=payload)
    assert resp.status == 422
    body = await resp.json()
    assert field in [d["field"] for d in body["details"]]


async def test_not_json(client) -> None:
    resp = await client.post("/api/v1/check", data=b"{nope",
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert "JSON" in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"", 422, None),
        (b"[1, 2]", 422, None),
        (b'{"text": "ok"', 400, "JSON"),
        (b'{"text": "\xff"}', 400, "UTF-8"),
    ],
)
async def test_bad_bodies(client, body: bytes, status: int, error: str | None) -> None:
    resp = await client.post("/api/v1/check", data=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status == status
    answer = await resp.json()
    if error:
        assert error in answer["error"]
    else:
        assert answer["details"][0]["field"] == "(body)"


async def test_utf8_bom_and_escapes_are_json(client) -> None:
    body = f'{{"text": "Rakst\\u012bt anna.berzina@gmail.com", "at": "{SUNDAY}"}}'
    resp = await client.post("/api/v1/check", data=b"\xef\xbb\xbf" + body.encode(),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 200
    (finding,) = (await resp.json())["findings"]
    assert (finding["rule"], finding["start"]) == ("personal-data", len("Rakstīt "))


async def test_oversized_body(client) -> None:
    resp = await client.post("/api/v1/check", json={"text": "a" * 5000},
                             headers={"Origin": "https://x.com"})
    assert resp.status == 413
    assert "at most 4096 bytes" in (await resp.json())["error"]
    assert resp.headers["Access-Control-Allow-Origin"] == "https://x.com"


async def test_cors_preflight_and_header(client) -> None:
    resp = await client.options("/api/v1/check", headers={
        "Origin": "https://x.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        "Access-Control-Request-Private-Network": "true",
    })
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "https://x.com"
    assert resp.headers["Vary"] == "Origin"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
    assert resp.headers["Access-Control-Allow-Private-Network"] == "true"
    facebook = {"Origin": "https://www.facebook.com"}
    resp = await client.post("/api/v1/check", json={"text": "ok", "at": SUNDAY},
                             headers=facebook)
    assert resp.headers["Access-Control-Allow-Origin"] == "https://www.facebook.com"
    resp = await client.post("/api/v1/check", json={"text": 1}, headers=facebook)
    assert resp.status == 422
    assert resp.headers["Access-Control-Allow-Origin"] == "https://www.facebook.com"
    resp = await client.put("/api/v1/check", json={"text": "ok"}, headers=facebook)
    assert resp.status == 405  # the router's own answer carries it too
    assert resp.headers["Access-Control-Allow-Origin"] == "https://www.facebook.com"
    resp = await client.get("/healthz", headers={"Origin": "https://x.com"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_clean_answers_follow_the_policy_version(aiohttp_client, tmp_path: Path) -> None:
    """Answers without findings are serialized once per policy version: a reload shows."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    example = policies / "institutions" / "example"
    state = PolicyState(example)
    client = await aiohttp_client(create_app(Settings(policy=example, var_dir=tmp_path), state))
    before = state.current.version
    first = await (await client.post("/api/v1/check",
                                     json={"text": "Sveiki!", "at": SUNDAY})).json()
    assert first == {"verdict": "ok", "policy": before, "findings": []}
    compliance = example / "compliance.yaml"
    compliance.write_text(
        compliance.read_text().replace("    - Blue Heron\n", "    - Blue Heron\n    - Red Kite\n")
    )
    assert state.reload() is None
    assert state.current.version != before
    again = await (await client.post("/api/v1/check",
                                     json={"text": "Labdien!", "at": SUNDAY})).json()
    assert again == {"verdict": "ok", "policy": state.current.version, "findings": []}


async def test_policy_summary(client) -> None:
    resp = await client.get("/api/v1/policy/summary?lang=sv")
    assert resp.status == 200
    body = await resp.json()
    assert [r["rule"] for r in body["rules"]][:2] == ["classified", "personal-data"]
    assert len(body["rules"]) == 12
    unsafe = next(r for r in body["rules"] if r["rule"] == "unsafe-link")
    assert unsafe["severity"] == {"official": "block", "personal": "warn"}
    assert unsafe["guideline"]["title"] == "Säkra länkar"


async def test_draft_text_is_never_logged(client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    secret = "Zilais Gārnis tikšanās pie 161175-19997"
    resp = await client.post("/api/v1/check", json={"text": secret, "at": SUNDAY})
    assert resp.status == 200
    resp = await client.post("/api/v1/check", json={"text": secret, "account": "bad"})
    assert resp.status == 422
    assert "Gārnis" not in caplog.text
    assert "161175" not in caplog.text
    assert "Gārnis" not in await resp.text()

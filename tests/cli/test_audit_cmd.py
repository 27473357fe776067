from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.store import audit, open_store
from proxy.store.db import Store

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("SARGS_DATABASE_URL", store_url)
    monkeypatch.setenv("SARGS_VAR_DIR", str(tmp_path))
    s = open_store(store_url, audit_key_file=tmp_path / "audit.keys")
    for i in range(4):
        audit.append(s, "block", at=T0 + timedelta(days=i), actor="gw1", user="eva",
                     platform="tiktok", details={"rule": "role"})
    audit.append(s, "policy-reload", at=T0 + timedelta(days=5), actor="service",
                 details={"version": "v2"})
    yield s
    s.close()


def test_verify_ok(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("ok: 5 entries, chain intact; no anchor in ")
    assert main(["audit", "anchor"]) == 0
    assert "anchored seq 5" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    assert "1 anchor(s) in" in capsys.readouterr().out


def test_rotated_key_signs_new_entries_and_old_ones_still_verify(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = store.audit_keys.current
    assert main(["audit", "rotate-key"]) == 0
    assert "new audit key" in capsys.readouterr().out
    assert (tmp_path / "audit.keys").stat().st_mode & 0o777 == 0o600
    store.reload_audit_keys()
    entry = audit.append(store, "block", actor="gw1")
    assert entry.key_id not in (None, first)
    assert main(["audit", "verify"]) == 0
    # Without the old key, its entries cannot be verified: say so, do not call them edited.
    lines = (tmp_path / "audit.keys").read_text().splitlines()
    (tmp_path / "audit.keys").write_text(lines[-1] + "\n")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"seq 1: unknown-key: made under audit key {first}" in out


def test_verify_names_the_tampered_entry(store: Store,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET platform = 'x' WHERE seq = 2")
        conn.exec_driver_sql("DELETE FROM audit_log WHERE seq = 4")
    assert main(["audit", "verify"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["seq 2: edited: contents changed (hash mismatch)",
                                "seq 4: deleted: entry 4 is missing"]
    assert "FAILED: 2 problem(s)" in err


def test_list_with_filters(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "list", "--kind", "policy-reload"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("5  2026-01-15 09:00:00  policy-reload  by=service")
    assert "version=v2" in lines[0]
    assert main(["audit", "list", "--since", "2026-01-11", "--until", "2026-01-13",
                 "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in rows] == [3, 2]
    assert rows[0]["user"] == "eva"


def test_bad_time_is_a_usage_error(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", "list", "--since", "yesterday"])
    assert exc.value.code == 2
    assert "not an ISO-8601 date" in capsys.readouterr().err


def test_export_csv(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "audit.csv"
    assert main(["audit", "export", "--csv", "--kind", "block", "-o", str(target)]) == 0
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["user"] == "eva"
    assert json.loads(rows[0]["details"]) == {"rule": "role"}
    assert main(["audit", "export", "--csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6


def test_prune_keeps_the_chain_verifiable(store: Store,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "anchor"]) == 0
    capsys.readouterr()
    assert main(["audit", "prune", "--before", "2026-01-12"]) == 0
    assert "pruned 2 entries (through seq 2); checkpoint at seq 6" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.strip().startswith(
        "ok: 4 entries, chain intact (from seq 3); 1 anchor(s) in")
    assert main(["audit", "prune", "--before", "2026-01-12"]) == 0
    assert "nothing older" in capsys.readouterr().out

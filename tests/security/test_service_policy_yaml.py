"""Policy files are read strictly and within bounds: an alias bomb or a Python tag dropped into
the policy directory of a running service is refused at once, named by file and line, and
the policy in force stays."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest

from proxy.policy.loader import MAX_FILE_BYTES, PolicyError, load
from proxy.runtime import PolicyState
from proxy.store import audit
from tests.support.gateway import copy_policy
from tests.support.service import EXAMPLE_POLICY, running_service

# 260 bytes: 9 strings, then five levels of nine aliases each (9**5 values when expanded).
BOMB = """\
# alias bomb (260 b)
lexicons:
  bomb0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  bomb1: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  bomb2: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  bomb3: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  bomb4: [*d,*d,*d,*d,*d,*d,*d,*d,*d]
"""


def _touch(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 2))


def test_the_alias_bomb_is_refused_fast_with_file_and_line(tmp_path: Path) -> None:
    policy = copy_policy(tmp_path)
    (policy / "zz-bomb.yaml").write_text(BOMB, encoding="utf-8")
    assert len(BOMB.encode()) == 260
    started = time.perf_counter()
    with pytest.raises(PolicyError) as caught:
        load(policy)
    elapsed = time.perf_counter() - started
    assert "zz-bomb.yaml:5: more than 16 aliases" in str(caught.value)
    # Reported, not asserted as a timing: the whole load including the real files.
    print(f"alias bomb refused after {elapsed * 1000:.1f} ms")


@pytest.mark.parametrize(("text", "line"), [
    ("platforms: !!python/object:builtins.dict {x: 1}\n", 1),
    ("deny: !!python/object/apply:os.system [echo pwned]\n", 1),
    ("institution:\n  name: !!python/name:os.system ''\n", 2),
    ("roles: !include other.yaml\n", 1),
    ("deny: !!set {a, b}\n", 1),
    ("version: !!binary aGk=\n", 1),
])
def test_unknown_tags_are_refused_on_every_kind_of_node(tmp_path: Path, text: str,
                                                        line: int) -> None:
    policy = copy_policy(tmp_path)
    (policy / "zz-tags.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load(policy)
    assert f"zz-tags.yaml:{line}:" in str(caught.value)
    assert "is not allowed in a policy" in str(caught.value)


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    policy = copy_policy(tmp_path)
    (policy / "zz-big.yaml").write_text("# x\n" * (MAX_FILE_BYTES // 4 + 1), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"zz-big.yaml: is \d+ bytes; a policy file may hold"):
        load(policy)


def test_the_example_policy_still_loads() -> None:
    assert load(EXAMPLE_POLICY).policy.platforms


async def test_a_running_service_refuses_the_bomb_and_keeps_its_policy(tmp_path: Path) -> None:
    policy = copy_policy(tmp_path)
    state = PolicyState(policy)
    async with running_service(tmp_path, f"sqlite:///{tmp_path / 'w.db'}",
                               policy=state) as svc, aiohttp.ClientSession() as s:
        before = (await (await s.get(svc.url + "/healthz")).json())["policy"]
        _touch(policy / "zz-bomb.yaml", BOMB)
        for _ in range(100):
            found = await asyncio.to_thread(audit.query, svc.store, kind="policy-reload")
            if found:
                break
            await asyncio.sleep(0.1)
        assert found[0].details["applied"] is False
        assert "zz-bomb.yaml:5: more than 16 aliases" in str(found[0].details["problem"])
        r = await s.get(svc.url + "/healthz")
        assert (await r.json())["policy"] == before

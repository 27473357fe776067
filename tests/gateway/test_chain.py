"""Chain: several addons as one mitmproxy addon, with each member's behaviour kept."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow

from proxy.gateway.chain import Chain


class Member:
    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name = name
        self.calls = calls
        self.fail = fail

    def request(self, flow: Any) -> None:
        self.calls.append(f"{self.name}.request")
        if self.fail:
            raise RuntimeError(f"{self.name} broke")


class AsyncMember:
    name = "asyncmember"

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def request(self, flow: Any) -> None:
        self.calls.append("async.request")

    async def requestheaders(self, flow: Any) -> None:
        self.calls.append("async.requestheaders")


class WithOption:
    name = "withoption"

    def __init__(self) -> None:
        self.value = 0
        self.lifecycle: list[str] = []

    def load(self, loader: Any) -> None:
        loader.add_option("chain_test_value", int, 1, "A test option.")

    def configure(self, updated: set[str]) -> None:
        from mitmproxy import ctx

        if "chain_test_value" in updated:
            if ctx.options.chain_test_value < 0:
                raise exceptions.OptionsError(  # type: ignore[no-untyped-call]
                    "chain_test_value must not be negative")
            self.value = ctx.options.chain_test_value

    def running(self) -> None:
        self.lifecycle.append("running")

    async def done(self) -> None:
        self.lifecycle.append("done")


async def test_members_run_in_order_and_only_where_they_have_the_hook() -> None:
    calls: list[str] = []
    chain = Chain([Member("a", calls), AsyncMember(calls), Member("b", calls)])
    assert set(chain.hooks) == {"request", "requestheaders"}
    assert not hasattr(chain, "response")  # mitmproxy skips it for events nobody handles
    with taddons.context(chain) as tctx:
        await tctx.cycle(chain, tflow.tflow())
    assert calls == ["async.requestheaders", "a.request", "async.request", "b.request"]


async def test_one_member_failing_does_not_skip_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    chain = Chain([Member("a", calls, fail=True), Member("b", calls)])
    with caplog.at_level(logging.ERROR):
        chain.request(tflow.tflow())  # type: ignore[attr-defined]
    assert calls == ["a.request", "b.request"]
    assert "Addon error: a.request failed" in caplog.text
    assert "a broke" in caplog.text


def test_every_member_runs_in_order_around_a_failing_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    chain = Chain([Member("a", calls), Member("b", calls, fail=True), Member("c", calls),
                   Member("d", calls)])
    with caplog.at_level(logging.ERROR):
        chain.request(tflow.tflow())  # type: ignore[attr-defined]
    assert calls == ["a.request", "b.request", "c.request", "d.request"]
    assert caplog.text.count("Addon error") == 1
    assert "Addon error: b.request failed" in caplog.text


def test_addon_halt_stops_the_event_as_in_mitmproxy() -> None:
    calls: list[str] = []

    class Halting(Member):
        def request(self, flow: Any) -> None:
            super().request(flow)
            raise exceptions.AddonHalt()

    chain = Chain([Halting("h", calls), Member("b", calls)])
    with pytest.raises(exceptions.AddonHalt):
        chain.request(tflow.tflow())  # type: ignore[attr-defined]
    assert calls == ["h.request"]


async def test_options_names_and_lifecycle_reach_every_member() -> None:
    calls: list[str] = []
    option = WithOption()
    named = Member("named", calls)
    chain = Chain([option, named])
    with taddons.context(chain) as tctx:
        assert tctx.master.addons.get("withoption") is option
        assert tctx.master.addons.get("named") is named
        tctx.configure(chain, chain_test_value=5)
        assert option.value == 5
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(chain, chain_test_value=-1)
        await chain.running()
        await chain.done()
    assert option.lifecycle == ["running", "done"]


def test_members_with_sub_addons_are_refused() -> None:
    class Parent:
        def __init__(self) -> None:
            self.addons: list[object] = []

    with pytest.raises(ValueError, match="sub-addons"):
        Chain([Parent()])

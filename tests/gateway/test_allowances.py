"""The gateway's allowances (``BundleAllowances``): one post, of this user, on this
platform, of this text, covering every blocking rule, once — whatever the bundle says
later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proxy.compliance.texthash import text_hash
from proxy.gateway.bundle import Bundle, BundleAllowances, bundle_json, parse_bundle
from proxy.store.allowances import Allowance
from tests.support.gateway import Clock

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
HASH = text_hash("Zvaniet man uz +371 29 123 456")


def allowance(id: str = "a1", user: str = "carl", platform: str = "x",
              rules: tuple[str, ...] = ("personal-data",), minutes: int = 10) -> Allowance:
    return Allowance(id=id, user=user, platform=platform, text_hash=HASH, kind="proceed",
                     rules=rules, issued_by=user, issued_at=T0,
                     expires_at=T0 + timedelta(minutes=minutes))


def bundle(*items: Allowance, version: int = 1) -> Bundle:
    return Bundle(version, "p", "d", (), allowances=items)


def test_taken_once_by_its_user_on_its_platform_for_its_text() -> None:
    clock = Clock(T0 + timedelta(minutes=1))
    held = BundleAllowances(clock)
    held.apply(bundle(allowance()))
    rules = {"personal-data"}
    assert held.take("dave", "x", HASH, rules) is None  # another user
    assert held.take("carl", "facebook", HASH, rules) is None  # another platform
    assert held.take("carl", "x", text_hash("another text"), rules) is None
    assert held.take("carl", "x", HASH, {"personal-data", "classified"}) is None  # not covered
    got = held.take("carl", "x", HASH, rules)
    assert got is not None
    assert got.id == "a1"
    assert held.take("carl", "x", HASH, rules) is None  # once
    # the next bundle, made before the service heard of the use, still lists it: still used
    held.apply(bundle(allowance(), version=2))
    assert held.take("carl", "x", HASH, rules) is None
    assert len(held) == 0


def test_expired_or_not_yet_issued_is_not_taken() -> None:
    clock = Clock(T0 + timedelta(minutes=10))
    held = BundleAllowances(clock)
    held.apply(bundle(allowance()))
    assert held.take("carl", "x", HASH, {"personal-data"}) is None
    clock.set(T0 - timedelta(minutes=5))  # issued "in the future" beyond clock skew
    assert held.take("carl", "x", HASH, {"personal-data"}) is None
    clock.set(T0 - timedelta(seconds=10))  # within the skew allowed
    assert held.take("carl", "x", HASH, {"personal-data"}) is not None


def test_installed_at_once_then_replaced_by_the_bundle() -> None:
    clock = Clock(T0 + timedelta(minutes=1))
    held = BundleAllowances(clock)
    held.install(allowance())
    assert len(held) == 1
    held.apply(bundle(allowance()))  # the bundle brings the same one
    assert len(held) == 1
    assert held.take("carl", "x", HASH, {"personal-data"}) is not None
    held.install(allowance())  # a late answer cannot bring a used one back
    assert held.take("carl", "x", HASH, {"personal-data"}) is None


def test_bundle_round_trip_and_malformed_allowances_named() -> None:
    b = bundle(allowance(), allowance("a2", user="dave"))
    assert parse_bundle(bundle_json(b)).allowances == b.allowances
    base = bundle_json(b)
    for bad, where in (({**base, "allowances": {}}, "allowances"),
                       ({**base, "allowances": ["x"]}, "allowances[0]"),
                       ({**base, "allowances": [{"id": "z"}]}, "allowances[0]"),
                       ({**base, "allowances": [{**base["allowances"][0],
                                                 "text_hash": "00"}]}, "allowances[0]")):
        with pytest.raises(ValueError, match=r"^" + where.replace("[", r"\[")):
            parse_bundle(bad)
    older = {k: v for k, v in base.items() if k != "allowances"}  # a service before them
    assert parse_bundle(older).allowances == ()

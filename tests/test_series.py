"""Lock-free counters and histograms expose exactly what prometheus_client's own do."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from proxy import series

BUCKETS = (0.005, 0.01, 0.25, 1.0, 30.0)
VALUES = (0.0, 0.005, 0.007, 0.3, 1.0, 29.9, 31.0, 0.01)


def test_same_exposition_as_prometheus_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1000.0)
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    p_count = PromCounter("sargs_things", "Things.", ["kind", "outcome"], registry=theirs)
    p_hist = PromHistogram("sargs_took_seconds", "Time.", ["route"], buckets=BUCKETS,
                           registry=theirs)
    count = series.Counter("sargs_things", "Things.", ("kind", "outcome"))
    hist = series.Histogram("sargs_took_seconds", "Time.", ("route",), BUCKETS)
    series.register(ours, count, hist)
    for i, value in enumerate(VALUES):
        kind, route = ("a", "/x") if i % 3 else ("b", "/y/{id}")
        p_count.labels(kind, "ok").inc()
        count.labels(kind, "ok").value += 1
        p_hist.labels(route).observe(value)
        hist.labels(route).observe(value)
    assert generate_latest(ours).decode() == generate_latest(theirs).decode()
    assert 'sargs_took_seconds_bucket{le="+Inf",route="/x"} 5.0' in generate_latest(ours).decode()


def test_same_names_twice_refused() -> None:
    registry = CollectorRegistry()
    series.register(registry, series.Counter("sargs_things", "Things.", ("kind",)))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        series.register(registry, series.Counter("sargs_things", "Things.", ("kind",)))

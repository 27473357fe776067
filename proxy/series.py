"""Prometheus counters and histograms for the hot path: plain numbers, no locks.

prometheus_client's ``Counter.inc`` and ``Histogram.observe`` take a lock each time, and
the histogram walks its buckets in Python: counting a request cost more than most of what
the gateway or the check API do for it. Here a series is a plain object that only the
event loop's thread changes, and a collector turns the series into the usual metric
families when a scrape comes (from another thread: reading an int, or copying a list, is
atomic under the GIL; a scrape in the middle of an observation may see the request in
``_count`` before its ``_sum``, never lose one).

The exposition is what prometheus_client's own ``Counter``/``Histogram`` give: names,
``_total``, ``_bucket``/``_count``/``_sum``, ``_created`` (following prometheus_client's
``PROMETHEUS_DISABLE_CREATED_SERIES`` switch). Use:

    checks = Counter("sargs_checks", "Draft checks answered.", ("verdict",))
    register(registry, checks)
    checks.labels("ok").value += 1
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class Count:
    """One counter series: add to ``value``."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()


class Observed:
    """One histogram series: per-bucket counts (not cumulative; ``+Inf`` last) and the sum."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        """Like ``Histogram.observe``: the first bucket whose bound is ≥ ``value``."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


S = TypeVar("S", Count, Observed)


class _Family(Generic[S]):
    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.label_names = tuple(labels)
        self.series: dict[tuple[str, ...], S] = {}
        """Label values → series (bounded by what the caller labels with)."""

    def labels(self, *values: str) -> S:
        found = self.series.get(values)
        if found is None:
            found = self.series[values] = self._new()
        return found

    def _new(self) -> S:
        raise NotImplementedError


class Counter(_Family[Count]):
    def _new(self) -> Count:
        return Count()


class Histogram(_Family[Observed]):
    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labels)
        self.bounds = tuple(float(b) for b in buckets)
        self._le = (*(floatToGoString(b) for b in self.bounds), "+Inf")  # type: ignore[no-untyped-call]

    def _new(self) -> Observed:
        return Observed(self.bounds)


def _use_created() -> bool:
    return bool(getattr(prometheus_metrics, "_use_created", True))


class _Collector:
    def __init__(self, families: Sequence[Counter | Histogram]) -> None:
        self.families = families

    def describe(self) -> Iterator[Metric]:
        """The names (so the registry refuses a second collector of the same names)."""
        for family in self.families:
            kind = CounterMetricFamily if isinstance(family, Counter) else HistogramMetricFamily
            yield kind(family.name, family.documentation, labels=family.label_names)

    def collect(self) -> Iterator[Metric]:
        created = _use_created()
        for family in self.families:
            if isinstance(family, Counter):
                yield _counter(family, created)
            else:
                yield _histogram(family, created)


def _counter(family: Counter, created: bool) -> Metric:
    out = CounterMetricFamily(family.name, family.documentation, labels=family.label_names)
    for values, count in tuple(family.series.items()):  # one atomic copy
        out.add_metric(values, count.value, count.created if created else None)
    return out


def _histogram(family: Histogram, created: bool) -> Metric:
    out = HistogramMetricFamily(family.name, family.documentation, labels=family.label_names)
    for values, observed in tuple(family.series.items()):
        counts = tuple(observed.counts)  # one atomic copy: count = the +Inf bucket
        buckets, acc = [], 0
        for le, n in zip(family._le, counts, strict=True):
            acc += n
            buckets.append((le, float(acc)))
        out.add_metric(values, buckets, observed.sum)
        if created:
            out.samples.append(Sample(
                family.name + "_created", dict(zip(family.label_names, values, strict=True)),
                observed.created,
            ))
    return out


def register(registry: CollectorRegistry, *families: Counter | Histogram) -> None:
    """Expose ``families`` in ``registry`` (scraped like any prometheus_client metric)."""
    registry.register(_Collector(families))

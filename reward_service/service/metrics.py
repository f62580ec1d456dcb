"""Prometheus metrics of one service instance, on its own registry (so tests can build many apps).

Names follow Prometheus conventions under the `reward_service_` prefix; every label is bounded:
routes are route templates (or "other"), task types and note words come from fixed lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import add

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from reward_service.scoring import NOTE_WORDS
from reward_service.service.item_stats import COMPONENT_BUCKETS, DURATION_BUCKETS, REWARD_BUCKETS, ItemStats, observe

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CACHE_RESULTS = ("hit", "miss", "error")
RESTART_REASONS = ("item_deadline", "request_deadline", "crash")


def _le(bound: float) -> str:
    return repr(float(bound))


Labels = tuple[str | int, ...]  # label values; an int (a status code) is written as its decimal text


class LabelledCounter(Collector):
    """A labelled counter kept in a plain dict: prometheus_client's Counter takes a lock per `labels` and
    per `inc`, and the service adds to its counters for every answered request, on the event loop (where
    /metrics is served too, so no lock is needed)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 initial: Iterable[Labels] = ()) -> None:
        self._name = name
        self._doc = documentation
        self._labelnames = list(labelnames)
        self._counts: dict[Labels, float] = dict.fromkeys(initial, 0)  # series shown from the start

    @property
    def counts(self) -> dict[Labels, float]:
        """The counts by label values (a view: the counter's own dict)."""
        return self._counts

    def add(self, labels: Labels, n: float) -> None:
        counts = self._counts
        counts[labels] = counts.get(labels, 0) + n

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self._name, self._doc, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labelnames)
        for labels, n in sorted(self._counts.items()):
            family.add_metric([str(value) for value in labels], n)
        return [family]


class BatchHistogram(Collector):
    """A labelled histogram kept as bucket vectors (a count per bucket, one for +Inf, then the sum): fed
    already-bucketed counts (`merge`: an `ItemStats`'s histograms) or one value at a time (`observe`).
    prometheus_client's Histogram can add no bucket vector, and takes a lock and walks its buckets in
    Python per observation. Like `LabelledCounter`, it is written on the event loop, where /metrics is
    served too: no lock."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        self._name = name
        self._doc = documentation
        self._labelnames = list(labelnames)
        self._buckets = tuple(buckets)
        self._bounds = [_le(b) for b in buckets] + ["+Inf"]
        self._series: dict[tuple[str, ...], list[float]] = {}

    def show(self, series: Iterable[tuple[str, ...]]) -> None:
        """Show these series from the start (at zero), as labelled children would be."""
        for labels in series:
            self._series.setdefault(labels, [0.0] * (len(self._buckets) + 2))

    def merge(self, labels: tuple[str, ...], counts: Sequence[float]) -> None:
        """Add `counts`: one count per bucket, one for +Inf, then the sum of the values."""
        have = self._series.get(labels)
        self._series[labels] = list(counts) if have is None else list(map(add, have, counts))

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        observe(self._series, labels, self._buckets, value)

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        return [_histogram_family(self._name, self._doc, self._labelnames, self._bounds, list(self._series.items()))]


def _histogram_family(name: str, documentation: str, labelnames: list[str], bounds: list[str],
                      series: Sequence[tuple[tuple[str, ...], list[float]]]) -> HistogramMetricFamily:
    """Series of bucket vectors (a count per bucket, one for +Inf, then the sum) as one histogram family."""
    family = HistogramMetricFamily(name, documentation, labels=labelnames)
    for labels, counts in sorted(series):
        cumulative, buckets = 0.0, []
        for bound, n in zip(bounds, counts[:-1], strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        family.add_metric(list(labels), buckets, counts[-1])
    return family


class RequestMetrics(Collector):
    """`reward_service_requests_total` by (route, code) (a `LabelledCounter`) and
    `reward_service_request_duration_seconds` by route (a `BatchHistogram`), counted with plain dict and
    list operations: prometheus_client's Counter.inc and Histogram.observe take a lock each and walk the
    buckets in Python, about 2% of the service process's samples on one-item requests (py-spy,
    in-process harness, 2026-11-30). Everything here runs on the event loop (/metrics is served there
    too)."""

    def __init__(self) -> None:
        self._requests = LabelledCounter("reward_service_requests", "HTTP requests answered, by route and status code",
                                         ["route", "code"])
        self._durations = BatchHistogram("reward_service_request_duration_seconds", "HTTP request duration, by route",
                                         ["route"], REQUEST_BUCKETS)

    def add_routes(self, routes: Iterable[str]) -> None:
        """Show these routes' duration series from the start (at zero), as labelled children would be."""
        self._durations.show((route,) for route in routes)

    @property
    def counts(self) -> dict[Labels, float]:
        """Requests answered by (route, code)."""
        return self._requests.counts

    def count(self, route: str, code: int, seconds: float) -> None:
        """One request answered: `route` is one of `add_routes`' (the middleware labels any other path
        "other"), so the series stay bounded."""
        self._requests.add((route, code), 1)
        self._durations.observe((route,), seconds)

    def describe(self) -> Iterable[Metric]:
        return [*self._requests.describe(), *self._durations.describe()]

    def collect(self) -> Iterable[Metric]:
        return [*self._requests.collect(), *self._durations.collect()]


class ServiceMetrics:
    """Every metric of the service. Call `bind_gauges` once the worker pool exists."""

    def __init__(self, scorer_version: str, reward_config_id: str, version: str) -> None:
        disable_created_metrics()  # `_created` series double the output and no dashboard reads them
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = RequestMetrics()  # requests_total and request_duration_seconds
        r.register(self.requests)
        self.inflight_requests = Gauge("reward_service_inflight_requests", "HTTP requests being served",
                                       registry=r)
        self.items = LabelledCounter("reward_service_items",
                                     "Items answered, by task type and status (cached included)",
                                     ["task_type", "status"])
        self.notes = LabelledCounter("reward_service_notes", "Reward-spec notes given to scored items, by note word",
                                     ["note"], [(word,) for word in (*NOTE_WORDS, "other")])
        self.cache_requests = LabelledCounter("reward_service_cache_requests", "Cache look-ups of items, by result",
                                              ["result"], [(result,) for result in CACHE_RESULTS])
        self.cache_faults = Counter("reward_service_cache_faults",
                                    "Cache backend faults (the items were scored anyway), by operation and kind",
                                    ["operation", "kind"], registry=r)
        self.worker_restarts = Counter("reward_service_worker_restarts",
                                       "Scoring processes killed or lost and replaced, by reason", ["reason"],
                                       registry=r)
        for reason in RESTART_REASONS:
            self.worker_restarts.labels(reason)
        self.inflight_items = Gauge("reward_service_inflight_items", "Items sent to a worker and not yet scored",
                                    registry=r)
        self.queued_items = Gauge("reward_service_queued_items", "Items waiting for a worker", registry=r)
        self.workers = Gauge("reward_service_workers", "Scoring processes ready to work", registry=r)
        self.item_duration = BatchHistogram("reward_service_item_scoring_duration_seconds",
                                            "Time to score one item in a worker, by task type", ["task_type"],
                                            DURATION_BUCKETS)
        self.component = BatchHistogram("reward_service_reward_component",
                                        "Reward components of scored items, by task type and component",
                                        ["task_type", "component"], COMPONENT_BUCKETS)
        self.reward = BatchHistogram("reward_service_reward", "Total reward of scored items, by task type",
                                     ["task_type"], REWARD_BUCKETS)
        for collector in (self.items, self.notes, self.cache_requests, self.item_duration, self.component, self.reward):
            r.register(collector)
        self.build = Info("reward_service_build", "Scorer version and default reward config of this build",
                          registry=r)
        self.build.info({"version": version, "scorer_version": scorer_version, "reward_config_id": reward_config_id})

    def bind_gauges(self, requests: Callable[[], float], inflight: Callable[[], float], queued: Callable[[], float],
                    workers: Callable[[], float]) -> None:
        """Gauges read from the service's own counts when scraped (a scrape counts itself in flight)."""
        self.inflight_requests.set_function(requests)
        self.inflight_items.set_function(inflight)
        self.queued_items.set_function(queued)
        self.workers.set_function(workers)

    def merge_items(self, stats: ItemStats) -> None:
        """Add `stats`: once per answered request (its item counts, and what the service answered itself),
        and once per chunk a worker scored (the histograms of that work)."""
        items = self.items
        for labels, n in stats.items.items():
            items.add(labels, n)
        notes = self.notes
        for word, n in stats.notes.items():
            notes.add((word,), n)
        for task, per_component in stats.components.items():
            for component, counts in per_component.items():
                self.component.merge((task, component), counts)
        for task, counts in stats.rewards.items():
            self.reward.merge((task,), counts)
        for task, counts in stats.durations.items():
            self.item_duration.merge((task,), counts)

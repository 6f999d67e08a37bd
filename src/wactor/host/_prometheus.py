"""The host's numbers as Prometheus metrics, through ``prometheus_client``.

Nothing is counted here: :class:`HostCollector` turns a :class:`HostSample` (the host's counters
copied on the loop's thread at scrape time) into metric families, and ``prometheus_client``
writes the exposition. Each host has its own ``CollectorRegistry``, so several hosts in one
process never share or clash over a metric. Per component (label ``component="ns/name/inst"``):

=============================================  =========  ======================================
``wactor_component_messages_total``            counter    messages its guest handled, by ``kind``
``wactor_component_failures_total``            counter    failed messages, by ``cause``
``wactor_component_restarts_total``            counter    restarts by its supervisor
``wactor_component_mailbox_depth``             gauge      messages queued or in its call
``wactor_component_mailbox_capacity``          gauge      its mailbox's size
``wactor_component_mailbox_refused_total``     counter    messages refused, its mailbox full
``wactor_component_call_duration_seconds``     histogram  export call time, by ``kind``
``wactor_component_fuel_used_total``           counter    wasm fuel its calls used
``wactor_component_storage_bytes``             gauge      bytes it holds in storage (with a quota)
``wactor_component_storage_quota_bytes``       gauge      its storage quota
``wactor_component_up``                        gauge      1 while it takes messages (ready)
``wactor_component_info``                      gauge      1, with ``version``, ``state``, ``health``
=============================================  =========  ======================================

Per host: ``wactor_dead_letters_total``, ``wactor_denials_total`` (audited refusals: denials,
quota breaches, bad signatures, operators' denials), ``wactor_audit_events_total`` by ``event``
(offered to the audit log, shed ones included), ``wactor_audit_shed_total``,
``wactor_supervisor_restarts_total`` by ``supervisor``, ``wactor_host_failed`` (the host's
supervisor gave up), ``wactor_load_failures`` (components of the config that did not start) and
``wactor_observe_refused_connections_total`` (past the endpoint's connection cap).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from wactor.errors import WactorError
from wactor.host._metrics import LATENCY_BUCKETS, CallMetricsSnapshot

__all__ = ["DENIAL_EVENTS", "ComponentSample", "HostCollector", "HostSample"]

_log = logging.getLogger("wactor.observe")

DENIAL_EVENTS = ("denial", "quota-breach", "signature-bad", "denied")
"""Audit events that count as denials."""

_BOUNDS = [f"{b:g}" for b in LATENCY_BUCKETS] + ["+Inf"]


@dataclass(frozen=True, slots=True)
class ComponentSample:
    """One component's numbers at scrape time."""

    id: str
    version: str
    state: str
    health: str
    depth: int
    capacity: int
    restarts: int
    refused: int
    calls: CallMetricsSnapshot | None  # None: no runtime here any more (failed for good)
    storage_quota: int | None  # None: no storage capability


@dataclass(frozen=True, slots=True)
class HostSample:
    """The host's numbers at scrape time."""

    components: tuple[ComponentSample, ...]
    supervisors: tuple[tuple[str, int], ...]  # (id, restarts)
    dead_letters: int
    audit_events: Mapping[str, int]
    audit_shed: int
    failed: bool
    load_failures: int
    refused_connections: int


StorageUsage = Callable[[str, int], int]
"""Bytes a component holds in storage: ``(component id, quota) -> bytes`` (may block)."""


class HostCollector(Collector):
    """Yields the metric families of the last :class:`HostSample` given to it."""

    def __init__(self, storage_bytes: StorageUsage) -> None:
        self._storage_bytes = storage_bytes
        self.sample: HostSample | None = None

    def collect(self) -> Iterator[Metric]:
        sample = self.sample  # read once: a later scrape may replace it meanwhile
        if sample is None:
            return
        yield from self._components(sample.components)
        yield from self._host(sample)

    def _components(self, components: tuple[ComponentSample, ...]) -> Iterator[Metric]:
        c = ["component"]
        messages = CounterMetricFamily(
            "wactor_component_messages",
            "Messages the component's guest handled, by kind.",
            labels=[*c, "kind"],
        )
        failures = CounterMetricFamily(
            "wactor_component_failures", "Messages that failed, by cause.", labels=[*c, "cause"]
        )
        restarts = CounterMetricFamily(
            "wactor_component_restarts", "Restarts of the component by its supervisor.", labels=c
        )
        depth = GaugeMetricFamily(
            "wactor_component_mailbox_depth", "Messages queued or in the current call.", labels=c
        )
        capacity = GaugeMetricFamily(
            "wactor_component_mailbox_capacity", "Size of the component's mailbox.", labels=c
        )
        refused = CounterMetricFamily(
            "wactor_component_mailbox_refused", "Messages refused: the mailbox was full.", labels=c
        )
        latency = HistogramMetricFamily(
            "wactor_component_call_duration_seconds",
            "Wall-clock time of the component's export calls, by message kind.",
            labels=[*c, "kind"],
        )
        fuel = CounterMetricFamily(
            "wactor_component_fuel_used", "Wasm fuel the component's calls used.", labels=c
        )
        storage = GaugeMetricFamily(
            "wactor_component_storage_bytes",
            "Bytes (keys and values) the component stores.",
            labels=c,
        )
        quota = GaugeMetricFamily(
            "wactor_component_storage_quota_bytes", "The component's storage quota.", labels=c
        )
        up = GaugeMetricFamily(
            "wactor_component_up",
            "1 while the component takes messages (ready), else 0.",
            labels=c,
        )
        info = GaugeMetricFamily(
            "wactor_component_info",
            "Always 1: the component's version, state and health.",
            labels=[*c, "version", "state", "health"],
        )
        for comp in components:
            cid = [comp.id]
            restarts.add_metric(cid, comp.restarts)
            depth.add_metric(cid, comp.depth)
            capacity.add_metric(cid, comp.capacity)
            refused.add_metric(cid, comp.refused)
            up.add_metric(cid, 1 if comp.state == "ready" else 0)
            info.add_metric([comp.id, comp.version, comp.state, comp.health], 1)
            if comp.calls is not None:
                for kind, (counts, total) in sorted(comp.calls.latency.items()):
                    messages.add_metric([comp.id, kind], sum(counts))
                    latency.add_metric([comp.id, kind], _cumulative(counts), total)
                for cause, count in sorted(comp.calls.failures.items()):
                    failures.add_metric([comp.id, cause], count)
                fuel.add_metric(cid, comp.calls.fuel_used)
            if comp.storage_quota is not None:
                quota.add_metric(cid, comp.storage_quota)
                used = self._used(comp.id, comp.storage_quota)
                if used is not None:
                    storage.add_metric(cid, used)
        yield from (messages, failures, restarts, depth, capacity, refused, latency, fuel)
        yield from (storage, quota, up, info)

    def _used(self, component: str, quota: int) -> int | None:
        try:
            return self._storage_bytes(component, quota)
        except WactorError as exc:  # the series is left out of this scrape, and said why
            _log.warning("observe: storage usage of %s: %s", component, exc)
            return None

    def _host(self, sample: HostSample) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "wactor_dead_letters",
            "Messages dropped or whose handling failed for good.",
            value=sample.dead_letters,
        )
        yield CounterMetricFamily(
            "wactor_denials",
            "Audited refusals: capability denials, quota breaches, bad signatures, operators' "
            "denials.",
            value=sum(sample.audit_events.get(e, 0) for e in DENIAL_EVENTS),
        )
        events = CounterMetricFamily(
            "wactor_audit_events",
            "Entries offered to the audit log (shed ones too), by event.",
            labels=["event"],
        )
        for event, count in sorted(sample.audit_events.items()):
            events.add_metric([event], count)
        yield events
        yield CounterMetricFamily(
            "wactor_audit_shed",
            "Audit entries shed (over a component's rate or the queue).",
            value=sample.audit_shed,
        )
        sups = CounterMetricFamily(
            "wactor_supervisor_restarts",
            "Restarts of a nested supervisor's group.",
            labels=["supervisor"],
        )
        for sup, count in sample.supervisors:
            sups.add_metric([sup], count)
        yield sups
        yield GaugeMetricFamily(
            "wactor_host_failed",
            "1 once the host's supervisor has given up.",
            value=1 if sample.failed else 0,
        )
        yield GaugeMetricFamily(
            "wactor_load_failures",
            "Components of the config that could not be started.",
            value=sample.load_failures,
        )
        yield CounterMetricFamily(
            "wactor_observe_refused_connections",
            "Connections to this endpoint refused past its connection cap.",
            value=sample.refused_connections,
        )


def _cumulative(counts: tuple[int, ...]) -> list[tuple[str, float]]:
    out, running = [], 0
    for bound, count in zip(_BOUNDS, counts, strict=True):
        running += count
        out.append((bound, float(running)))
    return out

"""GET /metrics: runs and steps by status, queue length, slot use, step durations (Prometheus text format)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from rtest.serve.registry import RUN_STATUSES, STEP_STATUSES


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.step_seconds = Histogram("rtest_step_duration_seconds", "Wall time of steps that ran a container.",
                                      buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600), registry=self.registry)
        self.runs_finished = Counter("rtest_runs_finished", "Runs finished by this service process, by status.",
                                     ["status"], registry=self.registry)
        self.steps_by_host = Counter("rtest_steps_by_host", "Steps that ran a container, by the host or cluster node "
                                     "that ran them.", ["host"], registry=self.registry)
        self.manager = None

    def attach(self, manager) -> None:
        """Gauges read at scrape time from the run registry and the slot pool."""
        self.manager = manager
        self.registry.register(_Live(manager))

    def step_finished(self, duration_s: float, host: str | None = None) -> None:
        self.step_seconds.observe(duration_s)
        if host:
            self.steps_by_host.labels(host).inc()

    def run_finished(self, status: str) -> None:
        self.runs_finished.labels(status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Live:
    def __init__(self, manager) -> None:
        self.manager = manager

    def collect(self):
        runs = GaugeMetricFamily("rtest_runs", "Runs in the registry, by status.", labels=["status"])
        counts = self.manager.registry.count_runs_by_status()
        for status in RUN_STATUSES:
            runs.add_metric([status], counts.get(status, 0))
        steps = GaugeMetricFamily("rtest_steps", "Steps in the registry, by status.", labels=["status"])
        counts = self.manager.registry.count_steps_by_status()
        for status in STEP_STATUSES:
            steps.add_metric([status], counts.get(status, 0))
        pool = self.manager.pool.snapshot()
        yield runs
        yield steps
        yield GaugeMetricFamily("rtest_queue_length", "Steps waiting for a slot.", value=len(pool["queue"]))
        yield GaugeMetricFamily("rtest_slots_in_use", "Step slots in use.", value=pool["in_use"])
        yield GaugeMetricFamily("rtest_slots", "Step slots of the machine-wide pool.", value=pool["slots"])

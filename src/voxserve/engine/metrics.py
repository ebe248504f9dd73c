"""Prometheus metrics of one engine, in a registry of its own (several engines never collide).

Who calls what: the engine observes latencies, batch sizes, failures, fallbacks and
cache lookups as they happen; gauges of running and waiting jobs read the engine's
state when scraped. The server returns ``render()`` from ``/metrics``. Names carry the
``voxserve_`` prefix and base units (seconds). This module does not time anything itself.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
)
QUEUE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class EngineMetrics:
    """The engine's counters, gauges and histograms; ``render`` gives the Prometheus text format."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.time_to_first_audio = Histogram(
            "voxserve_time_to_first_audio_seconds",
            "Submit to first audio chunk ready.",
            ["stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "voxserve_request_latency_seconds",
            "Submit to final chunk ready (successful jobs).",
            ["stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "voxserve_queue_time_seconds",
            "Time a work item waited in its stage queue before its batch ran.",
            ["stage"],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "voxserve_batch_size",
            "Items per batched model call.",
            ["stage"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_time = Histogram(
            "voxserve_batch_seconds",
            "Wall time of one stage's batched model work (every call of the batch), per stage.",
            ["stage"],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "voxserve_gc_pause_seconds",
            "Python garbage collections while serving (every thread stops for them), by generation.",
            ["generation"],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.real_time_factor = Histogram(
            "voxserve_real_time_factor",
            "End-to-end latency divided by audio duration (successful synthesized jobs).",
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.running = Gauge("voxserve_jobs_running", "Admitted jobs with work started.", registry=r)
        self.waiting = Gauge(
            "voxserve_jobs_waiting", "Admitted jobs with no model work started yet.", registry=r
        )
        self.jobs = Counter("voxserve_jobs", "Finished jobs by outcome.", ["outcome"], registry=r)
        self.failures = Counter(
            "voxserve_failures", "Failed or refused jobs by reason.", ["reason"], registry=r
        )
        self.fallbacks = Counter(
            "voxserve_fallbacks", "Batches retried on the fallback backend.", ["stage", "reason"], registry=r
        )
        self.cache_hits = Counter("voxserve_cache_hits", "Audio cache lookups that hit.", registry=r)
        self.cache_misses = Counter("voxserve_cache_misses", "Audio cache lookups that missed.", registry=r)

    def track_jobs(self, running: Callable[[], float], waiting: Callable[[], float]) -> None:
        """Read the running/waiting gauges from the engine at scrape time."""
        self.running.set_function(running)
        self.waiting.set_function(waiting)

    def render(self) -> bytes:
        """All metrics in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0.0 if absent), e.g. ``value("voxserve_fallbacks_total", stage="vocoder")``."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

"""The server's own Prometheus metrics (HTTP side), rendered as text next to the engine's.

Small and dependency-free on purpose: per-app instances (tests build many apps in
one process), no global registry. It covers what the engine cannot see: time to
first audio byte over HTTP, requests by route and status, disconnects.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

TTFA_BUCKETS = (0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; fine at the low end where the GPU target (15 ms) sits."""
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = [*labels, *extra]
    if not items:
        return ""
    esc = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in items)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(items, esc, strict=True)) + "}"


class Counter:
    """A monotonically increasing count per label set."""

    def __init__(self, name: str, help_: str) -> None:
        self.name, self.help = name, help_
        self._values: dict[Labels, float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._values[tuple(sorted(labels.items()))] += amount

    def get(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            lines += [f"{self.name}{_fmt_labels(k)} {v:g}" for k, v in sorted(self._values.items())]
        return lines


class Gauge(Counter):
    """A value that goes up and down (no labels needed here, but allowed)."""

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def render(self) -> list[str]:
        lines = super().render()
        lines[1] = f"# TYPE {self.name} gauge"
        if len(lines) == 2:
            lines.append(f"{self.name} 0")
        return lines


class Histogram:
    """Cumulative-bucket histogram per label set, Prometheus style."""

    def __init__(self, name: str, help_: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_, tuple(sorted(buckets))
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            counts[bisect_left(self.buckets, value)] += 1
            self._sums[key] += value

    def count(self, **labels: str) -> int:
        return sum(self._counts.get(tuple(sorted(labels.items())), []))

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for key, counts in sorted(self._counts.items()):
                running = 0
                for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f"{self.name}_bucket{_fmt_labels(key, (('le', le),))} {running}")
                lines.append(f"{self.name}_sum{_fmt_labels(key)} {self._sums[key]:.6f}")
                lines.append(f"{self.name}_count{_fmt_labels(key)} {running}")
        return lines


class HttpMetrics:
    """The HTTP layer's metrics for one app."""

    def __init__(self) -> None:
        self.requests = Counter("voxserve_http_requests_total", "HTTP requests by route and status code.")
        self.ttfa = Histogram(
            "voxserve_http_time_to_first_audio_seconds",
            "From request arrival to the first audio byte handed to the connection.",
            TTFA_BUCKETS,
        )
        self.latency = Histogram(
            "voxserve_http_request_duration_seconds",
            "From request arrival to the last byte of a speech response.",
            LATENCY_BUCKETS,
        )
        self.in_flight = Gauge("voxserve_http_speech_in_flight", "Speech requests being answered now.")
        self.disconnects = Counter(
            "voxserve_http_client_disconnects_total", "Speech requests whose client left before the end."
        )

    def render(self) -> bytes:
        lines: list[str] = []
        for m in (self.requests, self.ttfa, self.latency, self.in_flight, self.disconnects):
            lines += m.render()
        return ("\n".join(lines) + "\n").encode()

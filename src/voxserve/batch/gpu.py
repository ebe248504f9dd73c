"""GPU utilization sampled through NVML while a batch job runs (optional: skipped without pynvml or CUDA).

``pynvml`` comes from the ``nvidia-ml-py`` package. Sampling runs in a daemon thread every
``interval`` seconds and records the GPU's utilization (percent of time a kernel ran) and the
memory in use on that device (all processes). Nothing here is needed for synthesis.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any


class NvmlSampler:
    """Context manager; ``summary()`` after exit: mean/max utilization, peak memory, or None if unavailable."""

    def __init__(self, device: str, interval: float = 0.1) -> None:
        self.device = device
        self.interval = interval
        self._util: list[int] = []
        self._mem: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        self._handle: Any = None
        self.name = ""

    def __enter__(self) -> NvmlSampler:
        if not self.device.startswith("cuda"):
            return self
        try:
            import pynvml  # type: ignore[import-not-found]  # nvidia-ml-py, optional
            import torch

            if not torch.cuda.is_available():
                return self
            index = torch.device(self.device).index
            index = torch.cuda.current_device() if index is None else index
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(_physical(index))
            name = pynvml.nvmlDeviceGetName(handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as e:  # ImportError, or pynvml.NVMLError (no stdlib base): report without NVML
            self.name = f"unavailable ({type(e).__name__})"
            return self
        self._nvml, self._handle = pynvml, handle
        self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> bool:
        """Record one sample; False once NVML fails (then sampling stops, keeping what it has)."""
        try:
            util = int(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            used = int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)
        except Exception:  # pynvml.NVMLError
            return False
        self._util.append(util)
        self._mem.append(used)
        return True

    def _run(self) -> None:
        # First sample at once and a last one at exit, so even a short job has some.
        while self._sample() and not self._stop.wait(self.interval):
            pass

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._sample()
        if self._nvml is not None:
            with contextlib.suppress(Exception):  # shutting NVML down is best effort
                self._nvml.nvmlShutdown()

    def summary(self) -> dict[str, Any] | None:
        """{"device", "samples", "util_mean", "util_max", "memory_peak_mb"} or None without samples."""
        if not self._util:
            return None if not self.name else {"device": self.name, "samples": 0}
        return {
            "device": self.name,
            "samples": len(self._util),
            "interval_s": self.interval,
            "util_mean": round(sum(self._util) / len(self._util), 1),
            "util_max": max(self._util),
            "memory_peak_mb": round(max(self._mem) / 2**20, 1),
        }


def _physical(index: int) -> int:
    """NVML's index of CUDA device ``index`` (NVML ignores CUDA_VISIBLE_DEVICES)."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if index < len(visible) and visible[index].isdigit():
        return int(visible[index])
    return index

"""Shape buckets and CUDA-graph tables, the machinery under :class:`~voxserve.backends.cuda.CudaBackend`.

A stage runs at a fixed set of padded shapes, keyed ``(batch, length)``: a
request is padded up to the smallest bucket that holds it, the stage runs on
static buffers of that shape, and the caller slices the real rows and columns
back out. Each key's run is one CUDA graph, captured once (largest first, so the
smaller graphs reuse the memory pool of the larger ones) and replayed for every
request of that shape; a request past the largest bucket never reaches a table
(the backend runs it eagerly).

Nothing here knows about models. :class:`GraphTable` takes a ``step(key)``
function that reads and writes the static buffers, and a ``capture`` function
that turns a thunk into a replayable callable, so tests can drive it with a fake
capture on the CPU. :class:`FlatBuffer` hands out contiguous views of one
allocation at any bucket shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from voxserve.errors import InvalidInput

logger = logging.getLogger(__name__)

Key = tuple[int, int]
"""A bucket: (padded batch size, padded length in symbols or frames)."""


def check_buckets(name: str, values: Iterable[int]) -> tuple[int, ...]:
    """Sorted, de-duplicated positive bucket sizes; anything else raises InvalidInput naming ``name``."""
    try:
        out = tuple(sorted(set(values)))
    except TypeError:
        raise InvalidInput(f"{name} must be a sequence of positive integers", param=name) from None
    if not out or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in out):
        raise InvalidInput(
            f"{name} must be a non-empty sequence of positive integers, got {values!r}", param=name
        )
    return out


def pick(buckets: Sequence[int], size: int) -> int | None:
    """The smallest of the sorted ``buckets`` that is at least ``size``, or None past the largest."""
    for b in buckets:
        if b >= size:
            return b
    return None


@dataclass(frozen=True)
class Buckets:
    """A (batch, length) bucket table, optionally capped in total padded cells (``batch * length``).

    The cap keeps the few huge shapes (64 items × 2048 frames of audio) out of the
    graph table: they are compute-bound, gain nothing from a graph, and would pin
    gigabytes of static buffers. A request whose bucket is over the cap runs eagerly.
    """

    batch: tuple[int, ...]
    """Allowed padded batch sizes, ascending."""
    length: tuple[int, ...]
    """Allowed padded lengths (symbols or frames), ascending."""
    max_cells: int | None = None
    """Largest ``batch * length`` a bucket may have (None: no cap)."""

    def allows(self, key: Key) -> bool:
        return key[0] in self.batch and key[1] in self.length and self._fits(key)

    def _fits(self, key: Key) -> bool:
        return self.max_cells is None or key[0] * key[1] <= self.max_cells

    def select(self, batch: int, length: int) -> Key | None:
        """The bucket for a (batch, length) request, or None when it is past the table or the cap."""
        b, n = pick(self.batch, batch), pick(self.length, max(length, 1))
        if b is None or n is None or not self._fits((b, n)):
            return None
        return b, n

    def rows_for(self, length: int) -> int:
        """The most rows of ``length`` that one captured bucket holds (0: the length is past the table).

        A larger batch of that length runs as slices of this many rows, each replaying a
        graph, instead of eagerly: an eager call of a new shape makes cuDNN build plans for
        every convolution (hundreds of milliseconds under load, measured on the H100/H200).
        """
        n = pick(self.length, max(length, 1))
        if n is None:
            return 0
        return max((b for b in self.batch if self._fits((b, n))), default=0)

    def keys(self) -> list[Key]:
        """Every allowed bucket, largest (in cells, then batch) first: the capture order."""
        keys = [(b, n) for b in self.batch for n in self.length if self._fits((b, n))]
        return sorted(keys, key=lambda k: (k[0] * k[1], k[0]), reverse=True)

    @property
    def max_batch(self) -> int:
        return self.batch[-1]

    @property
    def max_length(self) -> int:
        return self.length[-1]

    def max_cells_used(self) -> int:
        """The largest ``batch * length`` of any allowed bucket (sizes the static buffers)."""
        return max(b * n for b, n in self.keys())


class FlatBuffer:
    """One device allocation viewed as a contiguous tensor of any shape that fits.

    ``view(b, n, ...)`` is the first ``b * n * ...`` elements, so every bucket
    shape of a stage shares the same memory and each view is contiguous (a slice
    ``[:b, :n]`` of a ``[B, N]`` buffer would not be, and a captured graph bakes
    in its input's strides).
    """

    def __init__(self, numel: int, dtype: torch.dtype, device: torch.device, fill: float = 0) -> None:
        self.data = torch.full((numel,), fill, dtype=dtype, device=device)

    def view(self, *shape: int) -> torch.Tensor:
        n = 1
        for s in shape:
            n *= s
        if n > self.data.numel():
            raise ValueError(f"view {shape} needs {n} elements, buffer has {self.data.numel()}")
        return self.data[:n].view(*shape)


def cuda_capture(device: torch.device, pool: Any) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """A ``capture`` for :class:`GraphTable`: warm the thunk up on a side stream, then record it as a graph.

    The warm-up run lets cuDNN pick its algorithms and lazy initialization happen
    outside the capture. All graphs made by one such function share ``pool``.
    """

    def capture(thunk: Callable[[], None]) -> Callable[[], None]:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            thunk()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            thunk()
        return graph.replay

    return capture


@dataclass
class CaptureStats:
    """What capturing a table cost."""

    graphs: int
    """Graphs captured (count)."""
    seconds: float
    """Wall time of warm-up plus capture (seconds)."""


class GraphTable:
    """One stage's replayable runs, one per bucket key.

    ``step(key)`` must only read and write static buffers (never allocate
    outputs that outlive it): a captured graph replays exactly the kernels it
    recorded, on the same addresses. ``run(key)`` replays the key's graph when one
    was captured and otherwise calls ``step`` directly, so results never depend
    on whether capture happened; the table only changes how fast they come.
    """

    def __init__(self, name: str, step: Callable[[Key], None]) -> None:
        self.name = name
        self.step = step
        self._replays: dict[Key, Callable[[], None]] = {}

    def __contains__(self, key: Key) -> bool:
        return key in self._replays

    def __len__(self) -> int:
        return len(self._replays)

    def capture(
        self, keys: Iterable[Key], capture: Callable[[Callable[[], None]], Callable[[], None]]
    ) -> CaptureStats:
        """Capture each key in the given order (callers pass largest first); already captured keys are skipped."""
        t0 = time.perf_counter()
        n = 0
        for key in keys:
            if key in self._replays:
                continue
            self._replays[key] = capture(self._thunk(key))
            n += 1
        stats = CaptureStats(graphs=n, seconds=time.perf_counter() - t0)
        logger.info("%s: captured %d graphs in %.2f s", self.name, stats.graphs, stats.seconds)
        return stats

    def _thunk(self, key: Key) -> Callable[[], None]:
        def thunk() -> None:
            self.step(key)

        return thunk

    def run(self, key: Key) -> None:
        replay = self._replays.get(key)
        if replay is None:
            self.step(key)
        else:
            replay()

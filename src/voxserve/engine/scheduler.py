"""Dynamic batching across requests: per-queue priority heaps, a batch window, deadlines, cancel.

Who calls what: the engine ``add``s work items (a sentence for the acoustic model, a
mel chunk for the vocoder, a text for the frontend) from every job; one worker thread
per scheduler loops on ``next_batch``, runs the batch and ``add``s the follow-up work.
``cancel`` and deadlines remove a job's queued items. Items only batch with items of the
same ``key`` (stage and voice); the scheduler never looks inside ``payload``: padding and
splitting belong to :mod:`voxserve.engine.batch`.

Batching rule: a queue is ready when it holds ``max_batch`` items, when its oldest item has
waited ``max_wait_s``, or at once when the ``expect`` hook says no more items of its key are
on their way (waiting then only adds latency: a lone request runs without the window). Among ready queues the one whose best item has the best priority
runs; a batch takes that queue's best ``max_batch`` items, and items a stream needs for its
first chunk only with their own kind. Priority, best first: first-chunk items, then higher
job priority, then earlier job, then earlier item. It does not admit or refuse jobs (the engine bounds admission) and owns no threads.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol


class JobRef(Protocol):
    """What the scheduler reads from a job: identity, ordering and deadline."""

    @property
    def id(self) -> int: ...

    @property
    def priority(self) -> int:
        """Higher runs first among equals."""
        ...

    @property
    def arrival(self) -> float:
        """Monotonic submit time (seconds)."""
        ...

    @property
    def deadline(self) -> float:
        """Monotonic time (seconds) after which the job's queued items are dropped."""
        ...


@dataclass(eq=False)
class WorkItem:
    """One unit of work of one job. ``payload`` is opaque here."""

    job: JobRef
    key: Hashable
    """Items batch together only with items of the same key (e.g. ``("vocoder", "baker")``)."""
    payload: object
    first: bool = False
    """True for work a stream needs for its first audio chunk."""
    cost: int = 1
    """What the item weighs against its key's ``max_cost`` per batch (e.g. mel frames to vocode)."""
    due: float | None = None
    """Monotonic time the item's output is needed by (a stream's playback runs dry then); None:
    the job's arrival. Among items of equal ``first`` and priority, the earliest due runs first."""
    seq: int = 0
    """Set by ``add``: global arrival order, the last tie-breaker."""
    enqueued: float = 0.0
    """Set by ``add``: monotonic time the item entered its queue (for queue-time metrics)."""

    def sort_key(self) -> tuple[bool, int, float, int]:
        due = self.job.arrival if self.due is None else self.due
        return (not self.first, -self.job.priority, due, self.seq)


@dataclass
class Batch:
    """What ``next_batch`` hands to a worker: items of one key to run, and items that expired."""

    key: Hashable | None
    items: list[WorkItem] = field(default_factory=list)
    expired: list[WorkItem] = field(default_factory=list)
    """Items dropped because their job's deadline passed; the worker fails those jobs."""


class _Queue:
    """A priority heap of items of one key, and the enqueue time of its oldest item."""

    def __init__(self) -> None:
        self.heap: list[tuple[tuple[bool, int, float, int], WorkItem]] = []
        self.oldest = 0.0
        self.cost = 0
        """Summed cost of the queued items."""

    def push(self, item: WorkItem) -> None:
        if not self.heap:
            self.oldest = item.enqueued
        heapq.heappush(self.heap, (item.sort_key(), item))
        self.cost += item.cost

    def keep(self, pred: Callable[[WorkItem], bool]) -> list[WorkItem]:
        """Drop items failing ``pred``; return the dropped ones."""
        dropped = [it for _, it in self.heap if not pred(it)]
        if dropped:
            self.heap = [entry for entry in self.heap if pred(entry[1])]
            heapq.heapify(self.heap)
            self.cost -= sum(it.cost for it in dropped)
            self._reset_oldest()
        return dropped

    def take(self, n: int, max_cost: int | None = None) -> list[WorkItem]:
        """The best ``n`` items weighing at most ``max_cost`` (always at least one item);
        first-chunk work only with first-chunk work (it sorts ahead of the rest).

        Why apart: a stream's first chunk is short and its listener is waiting, while later
        chunks are long and have the playing audio as slack; in one padded batch the first
        chunks would wait for the longest of the others. Why a cost bound: the worker runs
        one batch at a time, so a first chunk that arrives during a batch of many long later
        chunks waits for all of it (H100: 64-row vocoder calls held every stream 0.1-0.25 s).
        """
        first = bool(self.heap) and self.heap[0][1].first
        items: list[WorkItem] = []
        cost = 0
        while self.heap and len(items) < n and (not first or self.heap[0][1].first):
            nxt = self.heap[0][1]
            if items and max_cost is not None and cost + nxt.cost > max_cost:
                break
            cost += nxt.cost
            items.append(heapq.heappop(self.heap)[1])
        self.cost -= cost
        self._reset_oldest()
        return items

    def _reset_oldest(self) -> None:
        self.oldest = min((it.enqueued for _, it in self.heap), default=0.0)


class Scheduler:
    """Per-key priority queues with a batch window; thread-safe.

    ``max_batch`` is an int or a function of the queue key (backends may batch differently);
    ``max_cost(key)``, when given, bounds the summed ``WorkItem.cost`` of a batch (None: no bound).
    ``expect(key)`` says whether more items of ``key`` are on their way (upstream work in
    flight); it is called under the scheduler's lock, so it must be quick and must not call
    back into a lock that a thread calling ``add`` may hold. None: always assume so (every
    queue waits out the window). ``clock`` is injectable so tests can step time without sleeping.
    """

    def __init__(
        self,
        max_batch: int | Callable[[Hashable], int] = 16,
        max_wait_s: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
        expect: Callable[[Hashable], bool] | None = None,
        max_cost: Callable[[Hashable], int | None] | None = None,
    ) -> None:
        self._max_batch = max_batch if callable(max_batch) else (lambda _key, n=max_batch: n)
        self._max_cost = max_cost or (lambda _key: None)
        self.max_wait_s = max_wait_s
        self._expect = expect
        self._clock = clock
        self._queues: dict[Hashable, _Queue] = {}
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False

    def add(self, items: Iterable[WorkItem]) -> None:
        """Queue items (any keys, any jobs) and wake the worker."""
        with self._cond:
            now = self._clock()
            for item in items:
                item.seq = next(self._seq)
                item.enqueued = now
                self._queues.setdefault(item.key, _Queue()).push(item)
            self._cond.notify_all()

    def cancel(self, job_id: int) -> int:
        """Remove every queued item of ``job_id``; returns how many were removed."""
        with self._cond:
            return sum(len(q.keep(lambda it: it.job.id != job_id)) for q in self._queues.values())

    def pending(self, job_id: int | None = None, key: Hashable | None = None) -> int:
        """Queued items, optionally only those of one job and/or one key."""
        with self._cond:
            queues = list(self._queues.values()) if key is None else [self._queues.get(key, _Queue())]
            return sum(1 for q in queues for _, it in q.heap if job_id is None or it.job.id == job_id)

    def close(self) -> None:
        """Make ``next_batch`` return None from now on (queued items stay; the engine cancels them)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def next_batch(self, block: bool = True) -> Batch | None:
        """The next batch to run, waiting for one if ``block``; None once closed (or nothing, non-blocking).

        Drops expired items of every queue first and returns them in ``Batch.expired``
        (possibly with no items to run), so deadlines are enforced even when the queue
        they sit in is not the one that runs next.
        """
        with self._cond:
            while not self._closed:
                now = self._clock()
                expired = [it for q in self._queues.values() for it in q.keep(_alive_at(now))]
                key, wake = self._pick(now)
                if key is not None:
                    q = self._queues[key]
                    return Batch(key, q.take(self._max_batch(key), self._max_cost(key)), expired)
                if expired:
                    return Batch(None, [], expired)
                if not block:
                    return None
                self._cond.wait(None if wake is None else max(wake - now, 0.0))
            return None

    def _pick(self, now: float) -> tuple[Hashable | None, float | None]:
        """The ready queue with the best head item, and else the earliest time one becomes ready."""
        best_key: Hashable | None = None
        best: tuple[bool, int, float, int] | None = None
        wake: float | None = None
        for key, q in self._queues.items():
            if not q.heap:
                continue
            ready_at = q.oldest + self.max_wait_s
            max_cost = self._max_cost(key)
            full = len(q.heap) >= self._max_batch(key) or (max_cost is not None and q.cost >= max_cost)
            if full or now >= ready_at or (self._expect is not None and not self._expect(key)):
                head = q.heap[0][0]
                if best is None or head < best:
                    best_key, best = key, head
            elif wake is None or ready_at < wake:
                wake = ready_at
        return best_key, wake


def _alive_at(now: float) -> Callable[[WorkItem], bool]:
    return lambda item: item.job.deadline > now

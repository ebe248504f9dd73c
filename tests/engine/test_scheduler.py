"""The scheduler alone: batch window, priority, deadlines, cancel, with a stepped clock (no sleeping)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from voxserve.engine.scheduler import Scheduler, WorkItem

ACOUSTIC, VOCODER = ("acoustic", "baker"), ("vocoder", "baker")


@dataclass
class Job:
    id: int
    priority: int = 0
    arrival: float = 0.0
    deadline: float = 1e9


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(max_batch: int = 4, max_wait_s: float = 0.005) -> tuple[Scheduler, Clock]:
    clock = Clock()
    return Scheduler(max_batch=max_batch, max_wait_s=max_wait_s, clock=clock), clock


def item(job: Job, payload: object, key: tuple[str, str] = ACOUSTIC, first: bool = False) -> WorkItem:
    return WorkItem(job, key, payload, first=first)


def test_waits_for_the_window_then_batches_everything_queued():
    sched, clock = make(max_batch=4, max_wait_s=0.005)
    job = Job(1)
    sched.add([item(job, "a")])
    assert sched.next_batch(block=False) is None  # window still open
    clock.now += 0.002
    sched.add([item(job, "b")])
    clock.now += 0.002
    assert sched.next_batch(block=False) is None  # 4 ms after the first arrival
    clock.now += 0.0011
    batch = sched.next_batch(block=False)
    assert batch is not None and batch.key == ACOUSTIC
    assert [it.payload for it in batch.items] == ["a", "b"]
    assert sched.pending() == 0


def test_a_queue_expecting_nothing_more_runs_without_the_window():
    expecting = {ACOUSTIC: True, VOCODER: False}
    clock = Clock()
    sched = Scheduler(max_batch=8, max_wait_s=10.0, clock=clock, expect=lambda key: expecting[key])
    job = Job(1)
    sched.add([item(job, "mel"), item(job, "chunk", key=VOCODER)])
    batch = sched.next_batch(block=False)
    assert batch is not None and batch.key == VOCODER  # nothing upstream of it: no wait
    assert sched.next_batch(block=False) is None  # acoustic work still expects more text
    expecting[ACOUSTIC] = False
    batch = sched.next_batch(block=False)
    assert batch is not None and [it.payload for it in batch.items] == ["mel"]


def test_full_batch_runs_at_once_and_takes_at_most_max_batch():
    sched, _ = make(max_batch=3, max_wait_s=10.0)
    job = Job(1)
    sched.add([item(job, i) for i in range(7)])
    batch = sched.next_batch(block=False)
    assert batch is not None and [it.payload for it in batch.items] == [0, 1, 2]
    batch = sched.next_batch(block=False)
    assert batch is not None and [it.payload for it in batch.items] == [3, 4, 5]
    assert sched.next_batch(block=False) is None  # one left, window open
    assert sched.pending() == 1


def test_priority_first_chunks_then_job_priority_then_arrival():
    sched, clock = make(max_batch=1, max_wait_s=0.0)
    old, old_urgent, new_stream = Job(1, arrival=1.0), Job(2, priority=5, arrival=2.0), Job(3, arrival=3.0)
    offline = Job(4, priority=-1, arrival=0.5)
    sched.add([item(offline, "offline"), item(old, "old-later"), item(old_urgent, "urgent-later")])
    sched.add([item(new_stream, "new-first", first=True)])
    clock.now += 1
    order = [sched.next_batch(block=False).items[0].payload for _ in range(4)]  # type: ignore[union-attr]
    assert order == ["new-first", "urgent-later", "old-later", "offline"]


def test_stage_whose_best_item_is_best_runs_first_and_keys_never_mix():
    sched, _ = make(max_batch=8, max_wait_s=0.0)
    old, new = Job(1, arrival=1.0), Job(2, arrival=2.0)
    sched.add([item(old, "old-chunk", key=VOCODER), item(new, "new-sentence", key=ACOUSTIC, first=True)])
    sched.add([item(old, "old-sentence", key=ACOUSTIC)])
    first = sched.next_batch(block=False)
    assert first is not None and first.key == ACOUSTIC
    assert [it.payload for it in first.items] == ["new-sentence"]  # first-chunk work runs apart
    second = sched.next_batch(block=False)
    assert (
        second is not None and second.key == VOCODER and [it.payload for it in second.items] == ["old-chunk"]
    )
    third = sched.next_batch(block=False)
    assert (
        third is not None and third.key == ACOUSTIC and [it.payload for it in third.items] == ["old-sentence"]
    )


def test_expired_items_are_dropped_before_running_from_every_queue():
    sched, clock = make(max_batch=8, max_wait_s=0.0)
    late, fine = Job(1, deadline=100.5), Job(2, deadline=200.0)
    sched.add([item(late, "late-a"), item(fine, "fine"), item(late, "late-v", key=VOCODER)])
    clock.now = 101.0
    batch = sched.next_batch(block=False)
    assert batch is not None
    assert sorted(it.payload for it in batch.expired) == ["late-a", "late-v"]
    assert [it.payload for it in batch.items] == ["fine"]
    assert sched.pending() == 0


def test_cancel_removes_only_that_jobs_items():
    sched, _ = make(max_batch=8, max_wait_s=10.0)
    a, b = Job(1), Job(2)
    sched.add([item(a, "a1"), item(b, "b1"), item(a, "a2", key=VOCODER)])
    assert sched.cancel(a.id) == 2
    assert sched.pending(job_id=a.id) == 0 and sched.pending(job_id=b.id) == 1
    assert sched.pending(key=VOCODER) == 0


def test_blocking_worker_wakes_on_add_and_exits_on_close():
    sched = Scheduler(max_batch=2, max_wait_s=0.0)
    got: list[object] = []

    def worker() -> None:
        while (batch := sched.next_batch()) is not None:
            got.extend(it.payload for it in batch.items)

    thread = threading.Thread(target=worker)
    thread.start()
    sched.add([item(Job(1), "x")])
    sched.add([item(Job(2), "y")])
    while sched.pending():
        time.sleep(0.001)
    sched.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert sorted(got) == ["x", "y"]  # type: ignore[type-var]


def test_max_batch_can_depend_on_the_key():
    sched = Scheduler(max_batch=lambda key: 2 if key == VOCODER else 5, max_wait_s=10.0, clock=Clock())
    job = Job(1)
    sched.add([item(job, i, key=VOCODER) for i in range(3)] + [item(job, i) for i in range(3)])
    batch = sched.next_batch(block=False)
    assert batch is not None and batch.key == VOCODER and len(batch.items) == 2
    assert sched.next_batch(block=False) is None  # acoustic holds 3 < 5, window open


def test_first_chunk_work_batches_apart_from_later_work():
    sched, _ = make(max_batch=8, max_wait_s=0.0)
    old_stream, new_streams = Job(1, arrival=1.0), [Job(2, arrival=2.0), Job(3, arrival=3.0)]
    sched.add([item(old_stream, "tail-1", VOCODER), item(old_stream, "tail-2", VOCODER)])
    sched.add([item(j, f"first-{j.id}", VOCODER, first=True) for j in new_streams])
    batch = sched.next_batch(block=False)
    assert batch is not None and [it.payload for it in batch.items] == ["first-2", "first-3"]
    batch = sched.next_batch(block=False)
    assert batch is not None and [it.payload for it in batch.items] == ["tail-1", "tail-2"]


def test_max_cost_bounds_a_batch_and_a_full_budget_runs_at_once():
    budget = {VOCODER: 100, ACOUSTIC: None}
    sched = Scheduler(max_batch=8, max_wait_s=10.0, clock=Clock(), max_cost=budget.__getitem__)
    job = Job(1)
    sched.add([WorkItem(job, VOCODER, name, cost=cost) for name, cost in (("a", 60), ("b", 30), ("c", 30))])
    # 120 frames queued >= the 100-frame budget: the batch runs without waiting out the window
    batch = sched.next_batch(block=False)
    assert batch is not None and [it.payload for it in batch.items] == ["a", "b"]
    assert sched.next_batch(block=False) is None  # "c" (30) alone waits for the window again
    sched.add([WorkItem(job, VOCODER, "huge", cost=500)])
    batch = sched.next_batch(block=False)
    # an item over the budget still runs, alone: every item must run
    assert batch is not None and [it.payload for it in batch.items] == ["c"]
    batch = sched.next_batch(block=False)
    assert batch is not None and [it.payload for it in batch.items] == ["huge"]
    sched.add([WorkItem(job, ACOUSTIC, i, cost=1000) for i in range(3)])
    assert sched.next_batch(block=False) is None  # no budget for this key: only max_batch counts


def test_later_work_runs_earliest_due_first_whatever_the_arrival():
    sched, _ = make(max_batch=1, max_wait_s=0.0)
    old, new = Job(1, arrival=1.0), Job(2, arrival=50.0)
    # the old stream has seconds of audio still playing; the new one runs dry sooner
    sched.add(
        [WorkItem(old, VOCODER, "old-chunk", due=60.0), WorkItem(new, VOCODER, "new-chunk-2", due=50.4)]
    )
    sched.add([WorkItem(new, ACOUSTIC, "no-due")])  # no due: its job's arrival (50.0) counts
    order = [sched.next_batch(block=False) for _ in range(3)]
    assert [b.items[0].payload for b in order if b] == ["no-due", "new-chunk-2", "old-chunk"]

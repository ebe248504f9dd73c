"""The job store (SQLite) and the worker, with stand-in runners: states, ordering, resume, cancel, yielding."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from voxserve.batch.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    JobsBusy,
    JobStateError,
    JobStore,
    check_id,
)
from voxserve.batch.worker import JobWorker
from voxserve.errors import InvalidInput, NotFound

SETTINGS = {"voice": "baker", "format": "wav"}


@pytest.fixture
def store(tmp_path: Path):
    s = JobStore(tmp_path / "jobs")
    yield s
    s.close()


def _wait(pred, timeout: float = 30.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if pred():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


# --- store ---------------------------------------------------------------------------------------


def test_create_stores_input_and_queues(store):
    job = store.create(b"hello", "book.txt", "txt", SETTINGS)
    assert job.status == QUEUED and job.runs == 0 and not job.terminal
    assert store.input_path(job).read_bytes() == b"hello"
    assert store.get(job.id) == job
    assert job.settings == SETTINGS and job.input_bytes == 5


@pytest.mark.parametrize(
    "bad", ["../x", "batch_../../etc", "batch_" + "0" * 23, "BATCH_" + "a" * 24, "", "x/y"]
)
def test_ids_that_could_name_other_paths_are_unknown(store, bad):
    with pytest.raises(NotFound):
        check_id(bad)
    with pytest.raises(NotFound):
        store.get(bad)
    with pytest.raises(NotFound):
        store.job_dir(bad)


def test_unknown_id_is_not_found(store):
    with pytest.raises(NotFound):
        store.get("batch_" + "a" * 24)


def test_list_newest_first_with_paging_and_status(store):
    ids = [store.create(b"x", f"{i}.txt", "txt", SETTINGS).id for i in range(5)]
    assert [j.id for j in store.list_jobs()] == ids[::-1]
    first = store.list_jobs(limit=2)
    assert [j.id for j in first] == ids[:-3:-1]
    assert [j.id for j in store.list_jobs(limit=2, after=first[-1].id)] == [ids[2], ids[1]]
    store.request_cancel(ids[0])
    assert [j.id for j in store.list_jobs(status=CANCELLED)] == [ids[0]]


def test_claim_runs_oldest_first_and_counts_runs(store):
    a = store.create(b"a", "a.txt", "txt", SETTINGS)
    b = store.create(b"b", "b.txt", "txt", SETTINGS)
    got = store.claim_next()
    assert got is not None and got.id == a.id and got.status == RUNNING and got.runs == 1
    started = got.started_at
    assert store.recover() == [a.id]  # as if the process had died
    again = store.claim_next()
    assert again is not None and again.id == a.id and again.runs == 2 and again.started_at == started
    store.finish(a.id, DONE)
    assert store.claim_next().id == b.id
    assert store.claim_next() is None


def test_cancel_queued_at_once_running_by_flag(store):
    a = store.create(b"a", "a.txt", "txt", SETTINGS)
    b = store.create(b"b", "b.txt", "txt", SETTINGS)
    assert store.claim_next().id == a.id
    running = store.request_cancel(a.id)
    assert running.status == RUNNING and running.cancel_requested
    queued = store.request_cancel(b.id)
    assert queued.status == CANCELLED and queued.finished_at is not None
    assert store.claim_next() is None
    # A job cancelled while running whose process died is cancelled at recovery, not resumed.
    assert store.recover() == [] and store.get(a.id).status == CANCELLED


def test_delete_only_finished_jobs(store):
    job = store.create(b"a", "a.txt", "txt", SETTINGS)
    with pytest.raises(JobStateError):
        store.delete(job.id)
    store.request_cancel(job.id)
    folder = store.job_dir(job.id)
    assert folder.is_dir()
    store.delete(job.id)
    assert not folder.exists()
    with pytest.raises(NotFound):
        store.get(job.id)


def test_one_process_per_directory(tmp_path):
    first = JobStore(tmp_path)
    with pytest.raises(JobsBusy):
        JobStore(tmp_path)
    first.close()
    second = JobStore(tmp_path)  # the lock went with the first store
    second.close()


def test_jobs_survive_reopening(tmp_path):
    s = JobStore(tmp_path)
    job = s.create(b"a", "a.txt", "txt", SETTINGS)
    s.claim_next()
    s.update_progress(job.id, {"chapters_done": 1})
    s.close()
    s = JobStore(tmp_path)
    try:
        assert s.recover() == [job.id]
        got = s.get(job.id)
        assert got.status == QUEUED and got.progress == {"chapters_done": 1}
    finally:
        s.close()


# --- worker --------------------------------------------------------------------------------------


class FakeRunner:
    """A RunJob that "renders" chapters by writing files; ``hold`` blocks it until released or stopped."""

    def __init__(self, chapters: int = 3, fail: Exception | None = None) -> None:
        self.chapters, self.fail = chapters, fail
        self.hold = threading.Event()
        self.hold.set()
        self.started = threading.Event()
        self.rendered: list[int] = []

    def __call__(self, job, input_path, out_dir, tts, progress, stop) -> dict[str, Any]:
        self.started.set()
        if self.fail is not None:
            raise self.fail
        out_dir.mkdir(parents=True, exist_ok=True)
        done = 0
        for k in range(1, self.chapters + 1):
            path = out_dir / f"chapter-{k}.txt"
            if not path.exists():  # resumable: finished chapters are skipped
                while not self.hold.is_set():
                    if stop.wait(0.01):
                        return {"stopped": True}
                path.write_text(input_path.read_text())
                self.rendered.append(k)
            done += 1
            progress({"chapters_done": done, "chapters_total": self.chapters})
        return {"progress": {"chapters_done": done, "chapters_total": self.chapters}}


def _worker(store, runner, load=None) -> JobWorker:
    w = JobWorker(store, runner, make_tts=lambda: object(), load=load)
    w.start()
    return w


def test_worker_runs_jobs_to_done(store):
    runner = FakeRunner()
    w = _worker(store, runner)
    try:
        job = store.create(b"text", "a.txt", "txt", SETTINGS)
        w.wake()
        _wait(lambda: store.get(job.id).status == DONE)
        got = store.get(job.id)
        assert got.progress["chapters_done"] == 3 and got.finished_at is not None
        assert sorted(p.name for p in store.out_dir(job.id).iterdir()) == [
            f"chapter-{k}.txt" for k in (1, 2, 3)
        ]
    finally:
        w.stop()


@pytest.mark.parametrize(
    "error,code",
    [
        (InvalidInput("chapter 2, line 1: bad", param="input"), "invalid_request_error"),
        (KeyError("x"), "internal_error"),
    ],
)
def test_worker_records_failures_and_goes_on(store, error, code):
    w = _worker(store, FakeRunner(fail=error))
    try:
        job = store.create(b"text", "a.txt", "txt", SETTINGS)
        w.wake()
        _wait(lambda: store.get(job.id).terminal)
        got = store.get(job.id)
        assert got.status == FAILED and got.error_code == code and got.error
        w.run_job = FakeRunner()  # the worker survives a failed job
        nxt = store.create(b"text", "b.txt", "txt", SETTINGS)
        w.wake()
        _wait(lambda: store.get(nxt.id).status == DONE)
    finally:
        w.stop()


def test_cancel_stops_the_running_job(store):
    runner = FakeRunner()
    runner.hold.clear()
    w = _worker(store, runner)
    try:
        job = store.create(b"text", "a.txt", "txt", SETTINGS)
        w.wake()
        assert runner.started.wait(30)
        _wait(lambda: w.running == job.id)
        w.cancel(job.id)
        _wait(lambda: store.get(job.id).status == CANCELLED)
        assert w.running is None and runner.rendered == []
    finally:
        w.stop()


def test_shutdown_requeues_and_next_worker_resumes_after_finished_chapters(store):
    runner = FakeRunner()
    w = _worker(store, runner)
    job = store.create(b"text", "a.txt", "txt", SETTINGS)
    # Let chapter 1 finish, then hold chapter 2 and shut down.
    runner.hold.clear()
    (store.out_dir(job.id)).mkdir(parents=True)
    (store.out_dir(job.id) / "chapter-1.txt").write_text("text")
    w.wake()
    assert runner.started.wait(30)
    _wait(lambda: store.get(job.id).progress.get("chapters_done") == 1)
    w.stop()
    assert store.get(job.id).status == QUEUED
    second = FakeRunner()
    w2 = _worker(store, second)
    try:
        _wait(lambda: store.get(job.id).status == DONE)
        assert second.rendered == [2, 3] and store.get(job.id).runs == 2
    finally:
        w2.stop()

"""The serving engine with the real baker voice: batching, priority, deadlines, overload, cancel, drain, fallback.

A thin wrapper around the real backend records every batched call and can hold the
executor at a gate (so work piles up deterministically) or raise on chosen calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from voxserve.backends.interface import Backend
from voxserve.engine.batch import ChunkWork, run_vocoder
from voxserve.engine.interface import DeadlineExceeded, Overloaded, ShuttingDown, SpeechJob
from voxserve.engine.runtime import Engine
from voxserve.errors import InvalidInput, NotFound, VoxserveError
from voxserve.models.interface import Controls

SHORT = ["你好。", "今天天气很好。", "我们去公园吧！", "谢谢大家。"]


class Wrapped(Backend):
    """The real backend behind a gate, with a call log and injected faults ``{(stage, n): exception}``."""

    name = "wrapped"

    def __init__(
        self, inner: Backend, gate: bool = False, faults: dict | None = None, **attrs: object
    ) -> None:
        self.inner = inner
        self.gate = threading.Event()
        if not gate:
            self.gate.set()
        self.faults = dict(faults or {})
        self.calls: list[tuple[str, int, list[tuple[int, ...]]]] = []
        self.entered = threading.Event()
        self.__dict__.update(attrs)

    @property
    def receptive_frames(self) -> int:
        return self.inner.vocoder_model.receptive_frames  # type: ignore[attr-defined]

    def load(self, pack) -> None:
        pass

    def warmup(self) -> None:
        pass  # the inner backend is warm

    def _enter(self, stage: str, batch: int, rows: list[tuple[int, ...]]) -> None:
        n = sum(1 for s, _, _ in self.calls if s == stage)
        self.calls.append((stage, batch, rows))
        self.entered.set()
        self.gate.wait(60)
        fault = self.faults.pop((stage, n), None)
        if fault is not None:
            raise fault

    def acoustic(self, ids, lengths, controls, speaker=None, style=None):
        rows = [tuple(ids[i, : int(lengths[i])].tolist()) for i in range(ids.shape[0])]
        self._enter("acoustic", ids.shape[0], rows)
        return self.inner.acoustic(ids, lengths, controls, speaker, style)

    def vocoder(self, mel):
        self._enter("vocoder", mel.shape[0], [(mel.shape[1],)])
        return self.inner.vocoder(mel)


def ids_of(tts, sentence: str) -> tuple[int, ...]:
    voice = tts.voice()
    return tuple(voice.ids(voice.frontend.phonemize(voice.frontend.split(sentence)[0])))


async def until(pred: Callable[[], bool], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.005)


async def collect(stream) -> list:
    return [chunk async for chunk in stream]


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def acoustic_pending(engine: Engine) -> int:
    return engine.queued("acoustic")


# --- batching ---------------------------------------------------------------------------------------


def test_concurrent_jobs_batch_and_each_equals_its_unbatched_result(tts):
    wrapped = Wrapped(tts.voice().backend, gate=True)
    # one non-stream job with two sentences, then three streams whose first chunks can share a call
    texts = ["你好，世界。欢迎使用语音合成。", "今天天气很好。", "我们一起去公园散步吧！", "谢谢大家。"]
    with Engine(tts, backend=lambda v: wrapped) as engine:

        async def run() -> list:
            first = engine.submit(SpeechJob(texts[0], timestamps=True))
            await until(wrapped.entered.is_set)  # the executor holds job 0's first batch
            rest = [engine.submit(SpeechJob(t, stream=True, timestamps=True)) for t in texts[1:]]
            # every sentence is either in the held batch or queued behind it
            await until(lambda: acoustic_pending(engine) + wrapped.calls[0][1] == 5)
            wrapped.gate.set()
            return await asyncio.gather(*(collect(s) for s in [first, *rest]))

        results = asyncio.run(run())
        m = engine.metrics
        for stage in ("acoustic", "vocoder"):
            count = m.value("voxserve_batch_size_count", stage=stage)
            singles = m.value("voxserve_batch_size_bucket", stage=stage, le="1.0")
            assert singles < count, stage  # some call held more than one row
        assert max(n for s, n, _ in wrapped.calls if s == "acoustic") >= 3
        assert max(n for s, n, _ in wrapped.calls if s == "vocoder") >= 3  # the streams' first chunks
    for text, chunks in zip(texts, results, strict=True):
        ref = tts.synthesize(text)
        samples = np.concatenate([c.samples for c in chunks])
        assert chunks[-1].final and chunks[0].sample_rate == ref.sample_rate
        assert len(samples) == len(ref.samples)  # identical durations
        chars = [t for c in chunks for t in c.chars]
        assert [t.text for t in chars] == [t.text for t in ref.chars]
        np.testing.assert_allclose([t.end for t in chars], [t.end for t in ref.chars], atol=2e-4)
        assert corr(samples, ref.samples) >= 0.999


def test_a_lone_stream_does_not_wait_out_the_batch_window(tts):
    # A 60-second window: waiting it out would hit the 20-second deadline. Nothing else is in
    # flight, so each stage runs as soon as its work lands (the window only gathers company).
    with Engine(tts, max_wait_ms=60_000, default_deadline_s=20) as engine:
        chunks = engine.speak(SpeechJob("今天天气很好，我们去公园散步吧。", stream=True))
    assert chunks[-1].final and sum(len(c.samples) for c in chunks) > 0
    assert engine.metrics.value("voxserve_queue_time_seconds_sum", stage="acoustic") < 20


class FrameVocoder(Backend):
    """A stand-in vocoder with no receptive field: frame f becomes ``hop`` samples of mel[f, 0]."""

    name = "frames"

    def __init__(self, frame_buckets: tuple[int, ...] = ()) -> None:
        self.frame_buckets = frame_buckets
        self.shapes: list[tuple[int, int]] = []

    def load(self, pack) -> None:
        pass

    def acoustic(self, ids, lengths, controls, speaker=None, style=None):
        raise NotImplementedError

    def vocoder(self, mel):
        self.shapes.append((mel.shape[0], mel.shape[1]))
        return mel[..., 0].repeat_interleave(300, dim=1)


@pytest.mark.parametrize("buckets", [(), (64, 128, 256)])
def test_vocoder_calls_bound_padding_and_stitch_rows_back(buckets):
    def span(size: int, left: int, frames: int) -> ChunkWork:
        return ChunkWork(torch.arange(1, size + 1, dtype=torch.float32)[:, None].repeat(1, 80), left, frames)

    works = [
        span(100, 0, 100),  # whole sentences: never padded
        span(100, 0, 100),
        span(60, 0, 60),
        span(54, 0, 32),  # a stream's first chunk: start at the sentence start, context after
        span(54, 0, 32),
        span(108, 22, 64),  # interior chunk
        span(50, 22, 28),  # a sentence's last chunk: right-aligned
        span(10, 0, 10),  # too short to cut
    ]
    backend = FrameVocoder(buckets)
    got = run_vocoder(backend, works, 300, context=22)
    for w, samples in zip(works, got, strict=True):
        kept = torch.arange(w.left + 1, w.left + w.frames + 1, dtype=torch.float32).repeat_interleave(300)
        np.testing.assert_array_equal(samples, kept.numpy())
    real = sum(int(w.mel.shape[0]) for w in works)
    padded = sum(b * f for b, f in backend.shapes)
    if buckets:
        # whole spans cut in two (4 + 2 rows), 4 chunks: one bucketed call; the 10-frame one runs alone
        assert backend.shapes == [(10, 128), (1, 10)]
    else:
        assert (2, 100) in backend.shapes and (1, 60) in backend.shapes and (1, 10) in backend.shapes
        assert padded <= 1.25 * real


@pytest.mark.parametrize("buckets,rows", [(None, 8), ((64, 128, 1024), 3)])
def test_batched_vocoding_keeps_every_item_equal_to_its_own_run(tts, buckets, rows):
    voice = tts.voice()
    texts = ["好的。", "谢谢大家。", "再见！", "今天天气很好，我们一起去公园散步吧。", "可以吗？"]
    seqs = [voice.frontend.phonemize(t) for t in texts]
    mels = [
        out.mel[0, : int(out.mel_lengths[0])]
        for out in (
            voice.backend.acoustic(
                torch.tensor([voice.ids(q)]), torch.tensor([len(q.symbols)]), Controls.neutral(1)
            )
            for q in seqs
        )
    ]
    long = mels[3]
    works = [ChunkWork(m, 0, m.shape[0]) for m in mels]
    works += [
        ChunkWork(long[:54], 0, 32),
        ChunkWork(long[10:118], 22, 64),
        ChunkWork(long[74:], 22, long.shape[0] - 96),
    ]
    works = works[:rows]  # with buckets: three short sentences padded to the 128-frame bucket
    calls: list[int] = []
    backend = Wrapped(voice.backend, frame_buckets=buckets) if buckets else voice.backend
    got = run_vocoder(backend, works, 300, context=22, observe=calls.append)
    assert sum(calls) >= len(works)
    for w, samples in zip(works, got, strict=True):
        alone = voice.backend.vocoder(w.mel[None])[0, w.left * 300 : (w.left + w.frames) * 300].numpy()
        assert samples.shape == alone.shape
        assert corr(samples, alone) >= 0.9999
    if rows == 8:
        assert corr(np.concatenate(got[5:]), got[3]) >= 0.9999  # the chunks of the long sentence


def test_max_batch_follows_the_backends_buckets(tts):
    wrapped = Wrapped(tts.voice().backend, batch_buckets=(1, 2, 4, 8))
    with Engine(tts, backend=lambda v: wrapped) as engine:
        assert engine.batch_limit() == 8
    with Engine(tts, backend=lambda v: Wrapped(tts.voice().backend)) as engine:
        assert engine.batch_limit() == 16
    with Engine(tts, backend=lambda v: wrapped, max_batch=3) as engine:
        assert engine.batch_limit() == 3


# --- priority ----------------------------------------------------------------------------------------


def test_first_chunk_of_a_new_stream_runs_before_older_work(tts):
    wrapped = Wrapped(tts.voice().backend, gate=True)
    old_text, new_text = "今天天气很好。我们一起去公园散步吧！", "谢谢大家。"
    with Engine(tts, backend=lambda v: wrapped, max_batch=1) as engine:

        async def run() -> None:
            blocker = engine.submit(SpeechJob("你好。"))
            await until(wrapped.entered.is_set)
            old = engine.submit(SpeechJob(old_text))
            new = engine.submit(SpeechJob(new_text, stream=True))
            await until(lambda: acoustic_pending(engine) == 3)
            wrapped.gate.set()
            await asyncio.gather(collect(blocker), collect(old), collect(new))

        asyncio.run(run())
    after = wrapped.calls[1:]
    assert after[0][0] == "acoustic" and after[0][2] == [ids_of(tts, new_text)]
    # then the new stream's first chunk: 32 frames + 22 frames of right context
    assert after[1][0] == "vocoder" and after[1][2] == [(32 + 22,)]


# --- deadlines, overload, cancel, drain -------------------------------------------------------------


def test_deadline_drops_queued_work_and_fails_the_job(tts):
    wrapped = Wrapped(tts.voice().backend, gate=True)
    waited, unread = "今天天气很好。", "我们一起去公园散步吧！"
    with Engine(tts, backend=lambda v: wrapped) as engine:

        async def run() -> None:
            blocker = engine.submit(SpeechJob("你好。"))
            await until(wrapped.entered.is_set)
            # one client waits and times out; the other reads only after the scheduler dropped its work
            late = engine.submit(SpeechJob(waited, deadline_s=0.2))
            ignored = engine.submit(SpeechJob(unread, deadline_s=0.2))
            await until(lambda: acoustic_pending(engine) == 2)
            with pytest.raises(DeadlineExceeded):
                await collect(late)
            wrapped.gate.set()
            assert len(await collect(blocker)) == 1
            with pytest.raises(DeadlineExceeded):
                await collect(ignored)

        asyncio.run(run())
        assert engine.metrics.value("voxserve_failures_total", reason="deadline_exceeded") == 2
        assert engine.ready
    for text in (waited, unread):
        assert all(ids_of(tts, text) not in rows for _, _, rows in wrapped.calls)


def test_full_queue_refuses_at_once_with_retry_after(tts):
    wrapped = Wrapped(tts.voice().backend, gate=True)
    with Engine(tts, backend=lambda v: wrapped, max_queue=2) as engine:

        async def run() -> None:
            admitted = [engine.submit(SpeechJob(t)) for t in SHORT[:2]]
            with pytest.raises(Overloaded) as err:
                engine.submit(SpeechJob(SHORT[2]))
            assert err.value.retry_after >= 1.0 and err.value.status == 429
            wrapped.gate.set()
            for stream in admitted:
                assert (await collect(stream))[-1].final
            assert (await collect(engine.submit(SpeechJob(SHORT[2]))))[-1].final  # room again

        asyncio.run(run())
        assert engine.metrics.value("voxserve_failures_total", reason="overloaded") == 1


def test_cancel_drops_queued_work(tts):
    wrapped = Wrapped(tts.voice().backend, gate=True)
    dropped = "我们一起去公园散步吧！"
    with Engine(tts, backend=lambda v: wrapped) as engine:

        async def run() -> None:
            blocker = engine.submit(SpeechJob("你好。"))
            await until(wrapped.entered.is_set)
            stream = engine.submit(SpeechJob(dropped + "谢谢大家。"))
            await until(lambda: acoustic_pending(engine) == 2)
            stream.cancel()
            assert acoustic_pending(engine) == 0
            assert await collect(stream) == []
            wrapped.gate.set()
            assert len(await collect(blocker)) == 1

        asyncio.run(run())
        assert engine.metrics.value("voxserve_jobs_total", outcome="cancelled") == 1
    assert all(ids_of(tts, dropped) not in rows for _, _, rows in wrapped.calls)


def test_drain_finishes_in_flight_work_and_refuses_new(tts):
    wrapped = Wrapped(tts.voice().backend, gate=True)
    engine = Engine(tts, backend=lambda v: wrapped)
    engine.start_sync()
    assert engine.ready

    async def run() -> list:
        stream = engine.submit(SpeechJob(SHORT[1]))
        await until(wrapped.entered.is_set)
        stopping = asyncio.create_task(engine.stop(drain=True))
        await until(lambda: not engine.ready)
        with pytest.raises(ShuttingDown):
            engine.submit(SpeechJob(SHORT[0]))
        wrapped.gate.set()
        await stopping
        return await collect(stream)

    chunks = asyncio.run(run())
    assert len(chunks) == 1 and chunks[0].final
    assert len(chunks[0].samples) == len(tts.synthesize(SHORT[1]).samples)
    with pytest.raises(ShuttingDown):
        engine.speak(SpeechJob(SHORT[0]))


# --- fallback ---------------------------------------------------------------------------------------


def test_failed_batches_are_retried_on_the_fallback(tts):
    faults = {
        ("acoustic", 0): torch.cuda.OutOfMemoryError("injected"),
        ("vocoder", 0): RuntimeError("injected"),
    }
    wrapped = Wrapped(tts.voice().backend, faults=faults)
    with Engine(tts, backend=lambda v: wrapped, fallback=lambda v: v.backend) as engine:
        (chunk,) = engine.speak(SpeechJob(SHORT[1]))
        m = engine.metrics
        assert m.value("voxserve_fallbacks_total", stage="acoustic", reason="oom") == 1
        assert m.value("voxserve_fallbacks_total", stage="vocoder", reason="error") == 1
        assert engine.ready
        (again,) = engine.speak(SpeechJob(SHORT[1]))  # the primary serves the next job
    ref = tts.synthesize(SHORT[1])
    assert len(chunk.samples) == len(ref.samples) and corr(chunk.samples, ref.samples) >= 0.999
    np.testing.assert_array_equal(again.samples, chunk.samples)
    assert [s for s, _, _ in wrapped.calls] == ["acoustic", "vocoder", "acoustic", "vocoder"]


def test_without_fallback_a_failed_batch_fails_only_its_jobs(tts):
    wrapped = Wrapped(tts.voice().backend, faults={("vocoder", 0): RuntimeError("injected")})
    with Engine(tts, backend=lambda v: wrapped) as engine:
        with pytest.raises(VoxserveError, match="vocoder failed: injected"):
            engine.speak(SpeechJob(SHORT[0]))
        assert engine.ready
        assert engine.speak(SpeechJob(SHORT[0]))[-1].final
        assert engine.metrics.value("voxserve_failures_total", reason="internal_error") == 1


# --- validation and metrics ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tts):
    with Engine(tts) as eng:
        yield eng


@pytest.mark.parametrize(
    "job,error,match",
    [
        (SpeechJob(""), InvalidInput, "empty"),
        (SpeechJob("好" * 30_000), InvalidInput, "limit"),
        (SpeechJob("你好", voice="nobody"), NotFound, "nobody"),
        (SpeechJob("你好", deadline_s=0), InvalidInput, "deadline_s"),
    ],
)
def test_bad_jobs_are_refused_at_submit(engine, job, error, match):
    with pytest.raises(error, match=match):
        engine.submit(job)


def test_text_with_nothing_to_speak_fails_through_the_stream(engine):
    with pytest.raises(InvalidInput, match="nothing to speak"):
        engine.speak(SpeechJob("。，！？😀"))


def test_not_started_engine_refuses(tts):
    with pytest.raises(ShuttingDown):
        Engine(tts).submit(SpeechJob("你好"))


@pytest.mark.parametrize("kwargs", [{"max_queue": 0}, {"max_wait_ms": -1}, {"default_deadline_s": 0}])
def test_bad_engine_settings_name_the_setting(tts, kwargs):
    with pytest.raises(InvalidInput) as err:
        Engine(tts, **kwargs)
    assert err.value.param == next(iter(kwargs))


def test_metrics_render_prometheus_text(engine):
    engine.speak(SpeechJob(SHORT[0]))
    text = engine.metrics.render().decode()
    for name in (
        "voxserve_time_to_first_audio_seconds_bucket",
        "voxserve_request_latency_seconds_count",
        'voxserve_queue_time_seconds_count{stage="acoustic"}',
        'voxserve_batch_size_count{stage="vocoder"}',
        "voxserve_real_time_factor_count",
        "voxserve_jobs_running 0.0",
        "voxserve_jobs_waiting 0.0",
    ):
        assert name in text, name


def test_an_optional_voice_that_cannot_load_is_left_out(tts):
    """A server starts with its voices even when an optional one (the cloning pack without its
    vocoder source, say) fails to load: that voice is logged and not served."""
    from voxserve.engine.runtime import Engine

    engine = Engine(tts, optional_voices=["no-such-pack"], max_wait_ms=1.0)
    engine.start_sync()
    try:
        assert engine.voices == [tts.default_voice]
    finally:
        engine.stop_sync()

"""Streaming: chunk plans, chunked vocoding with context, in-order assembly, and stream jobs end to end."""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
import pytest
import torch

from voxserve.engine.controls import SynthesisParams
from voxserve.engine.interface import DeadlineExceeded, SpeechJob
from voxserve.engine.runtime import Engine
from voxserve.engine.streaming import (
    Assembler,
    ChunkPlan,
    JobStream,
    probe_receptive_frames,
    receptive_frames,
)
from voxserve.engine.tts import assemble
from voxserve.engine.voice import Rendered
from voxserve.errors import InvalidInput, VoxserveError
from voxserve.frontend.interface import PhoneSequence
from voxserve.models.interface import Controls

FPS = 80.0  # 24 kHz / hop 300
TEXT = "今天天气很好，我们一起去公园散步吧。请在下午三点之前提交报告！"


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# --- plans ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [1, 20, 32, 47, 48, 300, 1000])
@pytest.mark.parametrize("stream,first", [(True, True), (True, False), (False, False)])
def test_spans_tile_the_mel_with_clamped_context(frames, stream, first):
    spans = ChunkPlan().spans(frames, FPS, context=22, stream=stream, first=first)
    assert spans[0].start == 0 and spans[-1].end == frames
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    for s in spans:
        assert s.lo == max(0, s.start - 22) and s.hi == min(frames, s.end + 22)
        assert s.end - s.start >= min(frames, 16)  # no slivers: tails merge into the chunk before


def test_stream_chunks_start_short_and_grow_to_the_cap():
    plan = ChunkPlan(first_s=0.4, growth=2.0, max_s=3.2)
    sizes = [s.end - s.start for s in plan.spans(2000, FPS, 22, stream=True, first=True)]
    assert sizes[:5] == [32, 64, 128, 256, 256]
    later = [s.end - s.start for s in plan.spans(600, FPS, 22, stream=True, first=False)]
    assert later[0] == 256
    whole = [s.end - s.start for s in plan.spans(600, FPS, 22, stream=False, first=False)]
    assert whole == [600]  # under whole_s (8 s = 640 frames): one piece


@pytest.mark.parametrize(
    "kwargs,param",
    [({"first_s": 0}, "first_s"), ({"growth": 0.5}, "growth"), ({"first_s": 2, "max_s": 1}, "max_s")],
)
def test_plan_validation_names_the_field(kwargs, param):
    with pytest.raises(InvalidInput) as err:
        ChunkPlan(**kwargs)
    assert err.value.param == param


# --- chunked vocoding equals whole vocoding --------------------------------------------------------


@pytest.fixture(scope="module")
def mel(tts) -> torch.Tensor:
    voice = tts.voice()
    seq = voice.frontend.phonemize(voice.frontend.split(TEXT)[0])
    ids = torch.tensor([voice.ids(seq)])
    out = voice.backend.acoustic(ids, torch.tensor([ids.shape[1]]), Controls.neutral(1))
    return out.mel[0, : int(out.mel_lengths[0])]


def _chunked(backend, mel: torch.Tensor, context: int) -> np.ndarray:
    spans = ChunkPlan().spans(mel.shape[0], FPS, context, stream=True, first=True)
    assert len(spans) >= 3
    parts = []
    for s in spans:
        wav = backend.vocoder(mel[None, s.lo : s.hi])[0]
        parts.append(wav[(s.start - s.lo) * 300 : (s.end - s.lo) * 300].numpy())
    return np.concatenate(parts)


def test_chunks_with_receptive_context_equal_the_whole_vocoding(tts, mel):
    backend = tts.voice().backend
    whole = backend.vocoder(mel[None])[0].numpy()
    context = receptive_frames(backend, 80)
    chunked = _chunked(backend, mel, context)
    assert chunked.shape == whole.shape
    assert corr(chunked, whole) >= 0.999
    err_ctx = float(np.sqrt(np.mean((chunked - whole) ** 2)))
    # Without context each chunk edge is mirrored audio: the test can tell the difference.
    bare = _chunked(backend, mel, 0)
    err_bare = float(np.sqrt(np.mean((bare - whole) ** 2)))
    assert err_bare > 10 * err_ctx


def test_probe_finds_the_vocoders_receptive_field(tts):
    backend = tts.voice().backend
    declared = backend.vocoder_model.receptive_frames
    probed = probe_receptive_frames(backend.vocoder, 80)
    assert 10 <= probed <= declared + 2


# --- assembly -----------------------------------------------------------------------------------


def _seq(text: str) -> PhoneSequence:
    chars = [c for c in text if c not in "。，！"]
    symbols, index = ["sil"], [-1]
    for i, c in enumerate(text):
        if c in chars:
            symbols += ["x", "a1"]
            index += [i, i]
    return PhoneSequence(text, (*symbols, "sil"), (*index, -1))


def _sentences(rng: np.random.Generator) -> tuple[list[PhoneSequence], list[Rendered]]:
    seqs = [_seq("你好，世界。"), _seq("再见！")]
    rendered = []
    for seq in seqs:
        durations = rng.integers(1, 9, len(seq.symbols)).astype(np.int64)
        rendered.append(
            Rendered(rng.uniform(-0.6, 0.6, int(durations.sum()) * 300).astype(np.float32), durations)
        )
    return seqs, rendered


@pytest.mark.parametrize("volume", [1.0, 2.5])
def test_stream_assembly_in_any_order_equals_assemble(volume):
    rng = np.random.default_rng(0)
    seqs, rendered = _sentences(rng)
    params = SynthesisParams(volume=volume)
    ref = assemble(seqs, rendered, 24000, 300, params)
    asm = Assembler(2, 24000, 300, params, stream=True, timestamps=True)
    cuts = [np.array_split(r.samples, 3) for r in rendered]
    out = []
    out += asm.add(1, 2, cuts[1][2])
    out += asm.add(0, 1, cuts[0][1])
    out += asm.expect(1, seqs[1], rendered[1].durations, 3)
    assert out == []  # sentence 0 is not announced yet: nothing can go out
    out += asm.expect(0, seqs[0], rendered[0].durations, 3)
    assert out == []  # its first piece is missing
    out += asm.add(0, 0, cuts[0][0])
    assert [c.index for c in out] == [0, 1]
    for k, c in ((0, 2), (1, 0), (1, 1)):
        out += asm.add(k, c, cuts[k][c])
    assert [c.index for c in out] == list(range(6))
    assert [c.final for c in out] == [False] * 5 + [True]
    np.testing.assert_array_equal(np.concatenate([c.samples for c in out]), ref.samples)
    got = [t for c in out for t in c.chars]
    assert [t.text for t in got] == [t.text for t in ref.chars]
    np.testing.assert_allclose([t.end for t in got], [t.end for t in ref.chars], atol=2e-4)
    ends = np.cumsum([len(c.samples) for c in out]) / 24000
    for c, end in zip(out, ends, strict=True):
        assert all(t.end <= end + 1e-4 for t in c.chars)  # a chunk carries the characters ending in it
    assert asm.audio is not None and np.array_equal(asm.audio[0], ref.samples)


def test_whole_assembly_is_one_final_chunk_from_assemble():
    rng = np.random.default_rng(1)
    seqs, rendered = _sentences(rng)
    ref = assemble(seqs, rendered, 24000, 300, SynthesisParams())
    asm = Assembler(2, 24000, 300, SynthesisParams(), stream=False, timestamps=False)
    out = asm.expect(0, seqs[0], rendered[0].durations, 1) + asm.add(0, 0, rendered[0].samples)
    out += asm.expect(1, seqs[1], rendered[1].durations, 2)
    half = len(rendered[1].samples) // 2
    out += asm.add(1, 1, rendered[1].samples[half:])
    assert out == []
    out += asm.add(1, 0, rendered[1].samples[:half])
    assert len(out) == 1 and out[0].final and out[0].index == 0 and out[0].chars == ()
    np.testing.assert_array_equal(out[0].samples, ref.samples)


# --- the stream object ------------------------------------------------------------------------------


def test_stream_raises_deadline_and_reports_it():
    timed_out = []

    async def run() -> None:
        stream = JobStream(
            asyncio.get_running_loop(), time.monotonic() + 0.02, lambda: None, lambda: timed_out.append(1)
        )
        with pytest.raises(DeadlineExceeded):
            await stream.__anext__()

    asyncio.run(run())
    assert timed_out == [1]


def test_stream_delivers_errors_and_ends_after_cancel():
    cancelled = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        failing = JobStream(loop, time.monotonic() + 30, lambda: None, lambda: None)
        failing.push(VoxserveError("boom"))
        with pytest.raises(VoxserveError, match="boom"):
            await failing.__anext__()
        stream = JobStream(loop, time.monotonic() + 30, lambda: cancelled.append(1), lambda: None)
        stream.cancel()
        stream.cancel()
        assert [c async for c in stream] == []

    asyncio.run(run())
    assert cancelled == [1]


# --- stream jobs end to end ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tts):
    with Engine(tts) as eng:
        yield eng


def test_stream_job_chunks_concatenate_to_the_whole_audio(engine):
    (whole,) = engine.speak(SpeechJob(TEXT, timestamps=True))
    chunks = engine.speak(SpeechJob(TEXT, stream=True, timestamps=True))
    assert len(chunks) >= 4
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert len(chunks[0].samples) == 32 * 300  # 0.4 s first chunk
    joined = np.concatenate([c.samples for c in chunks])
    assert joined.shape == whole.samples.shape  # same pauses between sentences
    assert corr(joined, whole.samples) >= 0.999
    got = [t for c in chunks for t in c.chars]
    assert [t.text for t in got] == [t.text for t in whole.chars]
    np.testing.assert_allclose([t.start for t in got], [t.start for t in whole.chars], atol=2e-4)

"""Yielding: a job's model calls wait for an idle engine, stay near the time budget, and change no sample."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from voxserve.batch.yielding import Gate, Stopped, YieldingTTS
from voxserve.models.interface import Controls

HOP = 3
FRAMES = 150
"""Frames of every fake sentence (equal lengths: no padding, so batching cannot change a sample)."""


class FakeBackend:
    """Costs time on a fake clock; the vocoder reads 2 frames of context each side (reflect-padded ends)."""

    receptive_frames = 2

    def __init__(self, clock: list[float], load: list[float]) -> None:
        self.clock, self.load = clock, load
        self.calls: list[tuple[str, int, int, float]] = []
        """(stage, rows, frames, engine load when it started)."""

    def acoustic(self, ids: torch.Tensor, *args: Any) -> torch.Tensor:
        self.calls.append(("acoustic", len(ids), 0, self.load[0]))
        self.clock[0] += 0.010 * len(ids)
        mel = torch.arange(FRAMES, dtype=torch.float32)[None, :] + 1000 * ids[:, None].float()
        return mel[:, :, None].repeat(1, 1, 4)

    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        rows, frames = int(mel.shape[0]), int(mel.shape[1])
        self.calls.append(("vocoder", rows, frames, self.load[0]))
        self.clock[0] += 0.0005 * rows * frames
        padded = F.pad(mel[:, None, :, 0], (2, 2), mode="reflect")[:, 0]
        y = sum(padded[:, k : k + frames] * (k + 1) for k in range(5))
        return y.repeat_interleave(HOP, dim=1)


class FakeVoice:
    """Renders like ``Voice.render``: one acoustic and one vocoder call per batch; a sequence is an id."""

    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.config = type("Config", (), {"mel": {"n_mels": 4}})()
        self.max_batch = 64

    def render(self, seqs: list[int], controls: dict) -> list[np.ndarray]:
        mel = self.backend.acoustic(torch.tensor(seqs))
        wav = self.backend.vocoder(mel)
        return [wav[row].numpy() for row in range(len(seqs))]


class FakeTTS:
    def __init__(self, voice: FakeVoice) -> None:
        self._voice = voice
        self.default_voice = "fake"

    def voice(self, name=None) -> FakeVoice:
        return self._voice


def _setup(load: float = 0.0, slice_ms: float = 50.0):
    clock, busy = [0.0], [load]
    backend = FakeBackend(clock, busy)
    voice = FakeVoice(backend)
    stop = threading.Event()
    gate = Gate(lambda: busy[0], poll_s=0.001)
    tts = YieldingTTS(FakeTTS(voice), gate, stop, slice_ms=slice_ms, clock=lambda: clock[0])
    return tts, voice, backend, busy, stop, gate


def test_calls_stay_near_the_budget_and_samples_equal_one_whole_call():
    tts, voice, backend, _, _, _ = _setup()
    seqs = list(range(12))
    out = tts.voice().render(seqs, {})
    whole = voice.render(seqs, {})  # the original voice: one acoustic and one vocoder call
    assert len(out) == len(whole) and all(np.array_equal(a, b) for a, b in zip(out, whole, strict=True))
    gated = backend.calls[:-2]
    acoustic = [rows for stage, rows, _, _ in gated if stage == "acoustic"]
    assert acoustic[0] == 1 and set(acoustic[1:-1]) == {5}  # 50 ms / 10 ms per sentence, after measuring one
    vocoder = [(rows, frames) for stage, rows, frames, _ in gated if stage == "vocoder"]
    assert len(vocoder) > len(acoustic)  # long mels were cut in chunks
    # Each chunk costs about the budget: 0.5 ms per row-frame, context included, once adapted.
    assert max(0.0005 * r * f for r, f in vocoder[1:]) <= 0.05 * 1.6


def test_no_call_starts_while_the_engine_has_requests():
    tts, _, backend, busy, _, gate = _setup(load=1.0)
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(tts.voice().render([30, 20, 10], {})))
    t.start()
    t.join(0.2)
    assert t.is_alive() and backend.calls == []  # held back
    busy[0] = 0.0
    t.join(30)
    assert result and len(result[0]) == 3
    assert all(load == 0.0 for *_, load in backend.calls) and gate.waits == 1 and gate.waited_s > 0


def test_stop_unwinds_the_render_with_stopped():
    tts, _, backend, _, stop, _ = _setup(load=1.0)
    stop.set()
    with pytest.raises(Stopped):
        tts.voice().render([10, 10], {})
    assert backend.calls == []


def test_runner_settings_reach_the_voice_that_renders():
    tts, voice, _, _, _, _ = _setup()
    v = tts.voice()
    v.max_batch = 7  # as the chapter runner does
    assert v.max_batch == 7 and voice.max_batch == 64  # the original serves others unchanged
    assert v.config is voice.config and tts.default_voice == "fake"


def test_real_voice_renders_the_same_audio_in_small_calls(tts):
    """Baker through 5 ms calls (one sentence each, chunked vocoder): same durations, same audio.

    Exact stitching is the fake vocoder's test above; here oneDNN's convolutions make one frame of
    a few call shapes deviate by ~0.008 whatever the chunking (whole calls of other lengths too),
    so samples are compared with that margin and by correlation.
    """
    voice = tts.voice()
    texts = ("你好。", "今天天气很好，我们去公园。")  # the short one measures the vocoder's cost
    seqs = [voice.frontend.phonemize(s) for s in texts]
    controls = dict.fromkeys(Controls._fields, 1.0)
    whole = [voice.render([seq], controls)[0] for seq in seqs]  # unbatched: no padding differences
    y = YieldingTTS(tts, Gate(None), threading.Event(), slice_ms=5.0)
    sliced = y.voice().render(seqs, controls)
    assert y.calls >= 5  # 2 for the short sentence; the long one: acoustic, then its mel in 2+ chunks
    for a, b in zip(sliced, whole, strict=True):
        assert np.array_equal(a.durations, b.durations)
        assert len(a.samples) == len(b.samples)
        assert np.max(np.abs(a.samples - b.samples)) < 0.02
        assert np.corrcoef(a.samples, b.samples)[0, 1] > 0.9999


def test_vocoder_splits_rows_when_even_short_chunks_of_all_rows_would_overrun():
    tts, _, backend, _, _, _ = _setup(slice_ms=10.0)
    gated = tts.voice()._twin.backend
    mel = backend.acoustic(torch.arange(8))
    gated.vocoder(mel[:1, :10])  # measures 0.5 ms per row-frame
    backend.calls.clear()
    out = gated.vocoder(mel)
    assert torch.equal(out, backend.vocoder(mel))
    calls = [(rows, frames) for stage, rows, frames, _ in backend.calls[:-1]]
    assert len(calls) > 8 and max(0.0005 * r * f for r, f in calls) <= 0.010

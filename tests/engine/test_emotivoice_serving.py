"""EmotiVoice through the serving path: voice names → speakers, emotion/prompt style, mixed batches.

A tiny random-weight pack (converted from a random release in the official layout) is
installed into a temporary VOXSERVE_HOME, so every path a user's pack takes is exercised.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading

import numpy as np
import pytest
import torch

from voxserve.engine.batch import SentenceWork, conditioning_tensors, run_acoustic
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.interface import SpeechJob
from voxserve.engine.resolve import resolve_voice
from voxserve.engine.runtime import Engine
from voxserve.engine.speakers import Speaker
from voxserve.errors import NotFound, PackError
from voxserve.packs.pack import Pack

TEXTS = ["今天天气很好。", "我们一起去公园散步吧！", "Hello world.", "谢谢大家。"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from voxserve.packs.emotivoice.layout import write_random_pack

    root = tmp_path_factory.mktemp("ev-home")
    write_random_pack(root / "packs" / "emotivoice", small=True, seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXSERVE_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def ev(home):
    from voxserve import TTS

    tts = TTS(voice="emotivoice")
    tts.voice()
    return tts


@pytest.fixture(scope="module")
def pack(ev) -> Pack:
    return ev.voice().pack


class Directory:
    """A voice registry stand-in: one registered id."""

    def __init__(self, speaker: Speaker) -> None:
        self.speaker = speaker

    def lookup(self, voice_id: str) -> Speaker | None:
        return self.speaker if voice_id == self.speaker.voice_id else None


# --- names ------------------------------------------------------------------------------------------


def test_pack_config_says_how_it_is_conditioned(pack):
    cfg = pack.config
    assert cfg.speaker_input == "table" and cfg.speakers[:2] == ("1000", "1001")
    assert cfg.style["kind"] == "emotivoice-prompt" and cfg.style["encoder"]["bert"] == "bert"
    assert pack.speaker_row() == 0 and pack.speaker_row("1004") == 4


def test_voice_names_resolve_to_speakers(pack):
    packs = {"emotivoice": pack}
    assert resolve_voice(None, "emotivoice", packs) == Speaker("emotivoice", 0, voice_id="emotivoice")
    assert resolve_voice("emotivoice:1003", "x", packs).row == 3
    bare = resolve_voice("1005", "x", packs)
    assert (bare.pack, bare.row, bare.voice_id) == ("emotivoice", 5, "emotivoice:1005")
    with pytest.raises(NotFound, match="no speaker 'nobody'"):
        resolve_voice("emotivoice:nobody", "x", packs)
    with pytest.raises(NotFound, match="unknown voice 'nobody'"):
        resolve_voice("nobody", "x", packs)
    cloned = Speaker("emotivoice", embedding=np.ones(4, np.float32), voice_id="voice_1")
    assert resolve_voice("voice_1", "x", packs, [Directory(cloned)]) is cloned
    elsewhere = Speaker("clone-pack", embedding=np.ones(4, np.float32), voice_id="voice_2")
    with pytest.raises(NotFound, match="clone-pack"):  # a registered voice whose pack is not served
        resolve_voice("voice_2", "x", packs, [Directory(elsewhere)])


def test_a_speaker_in_two_packs_must_be_named_with_its_pack(pack, tmp_path):
    shutil.copytree(pack.path, tmp_path / "ev2", ignore=shutil.ignore_patterns("*.safetensors", "onnx"))
    cfg = json.loads((tmp_path / "ev2" / "config.json").read_text("utf-8"))
    cfg["name"] = "ev2"
    (tmp_path / "ev2" / "config.json").write_text(json.dumps(cfg), "utf-8")
    packs = {"emotivoice": pack, "ev2": Pack(tmp_path / "ev2")}
    with pytest.raises(NotFound, match="emotivoice:1002, ev2:1002"):
        resolve_voice("1002", "x", packs)
    assert resolve_voice("ev2:1002", "x", packs).pack == "ev2"


def test_pack_config_validates_speakers_and_style(pack, tmp_path):
    raw = json.loads((pack.path / "config.json").read_text("utf-8"))
    for patch, message in (
        ({"speaker_input": "voiceprint"}, "speaker_input"),
        ({"default_speaker": "9999"}, "default_speaker"),
        ({"style": "prompt"}, "'style'"),
        ({"speaker_input": "embedding"}, "speaker_dim"),
    ):
        (tmp_path / "config.json").write_text(json.dumps(raw | patch), "utf-8")
        with pytest.raises(PackError, match=message):
            Pack(tmp_path)


# --- style --------------------------------------------------------------------------------------------


def test_style_row_is_the_prompt_and_the_sentence_embeddings(ev):
    voice = ev.voice()
    embed = voice.style.embedder.embed
    happy = voice.style_vector(SynthesisParams.create(emotion="happy"), "今天天气很好。")
    want = torch.cat([embed(["开心"])[0], embed(["今天天气很好。"])[0]]).numpy()
    np.testing.assert_allclose(happy, want, atol=1e-5)
    neutral = voice.style_vector(SynthesisParams(), "今天天气很好。")
    np.testing.assert_allclose(neutral[: len(want) // 2], embed(["普通"])[0].numpy(), atol=1e-5)
    prompt = voice.style_vector(SynthesisParams.create(instructions=" 用开心的语气说 "), "今天天气很好。")
    np.testing.assert_allclose(prompt[: len(want) // 2], embed(["用开心的语气说"])[0].numpy(), atol=1e-5)
    assert voice.style.dim == happy.shape[0] == 2 * voice.style.embedder.encoder.bert.config.hidden_size


def test_speaker_emotion_and_prompt_each_change_the_audio(ev):
    base = ev.synthesize(TEXTS[0], voice="emotivoice:1001").samples
    assert np.array_equal(base, ev.synthesize(TEXTS[0], voice="1001").samples)  # deterministic
    # Random BERT weights map every text to nearly the same embedding, so a style changes
    # the audio only slightly here; equality is exact for equal inputs, so any change shows.
    for kw in ({"voice": "emotivoice:1002"}, {"voice": "1001", "emotion": "生气"}):
        other = ev.synthesize(TEXTS[0], **kw).samples
        assert len(other) != len(base) or not np.array_equal(other, base), kw
    # a prompt equal to a label is that label; other free text is its own prompt
    by_label = ev.synthesize(TEXTS[0], voice="1001", emotion="开心").samples
    assert np.array_equal(by_label, ev.synthesize(TEXTS[0], voice="1001", instructions="开心").samples)
    free = ev.synthesize(TEXTS[0], voice="1001", instructions="用开心的语气说").samples
    assert len(free) != len(by_label) or not np.array_equal(free, by_label)


def test_unknown_speaker_is_not_found(ev):
    with pytest.raises(NotFound, match="speakers: 1000, 1001"):
        ev.synthesize("你好。", voice="emotivoice:9999")


# --- batching -----------------------------------------------------------------------------------------


def test_rows_of_different_speakers_and_styles_batch_and_equal_their_own_runs(ev):
    voice = ev.voice()
    works = []
    for k, (text, spk, emotion) in enumerate(
        zip(TEXTS, (0, 3, 5, 1), ("开心", "悲伤", None, "恐惧"), strict=True)
    ):
        seq = voice.frontend.phonemize(voice.frontend.split(text)[0])
        style = voice.style_vector(SynthesisParams.create(emotion=emotion), seq.text)
        works.append(SentenceWork(tuple(voice.ids(seq)), (1.0, 1.0, 1.0, 1.0), k, spk, style))
    batched = run_acoustic(voice.backend, works)
    for w, out in zip(works, batched, strict=True):
        (alone,) = run_acoustic(voice.backend, [w])
        assert np.array_equal(out.durations, alone.durations)
        torch.testing.assert_close(out.mel, alone.mel, atol=1e-4, rtol=1e-4)


def test_conditioning_tensors_keep_one_kind_per_batch():
    speaker, style = conditioning_tensors([1, 2], [np.ones(3, np.float32), np.zeros(3, np.float32)])
    assert speaker.dtype == torch.int64 and speaker.tolist() == [1, 2] and style.shape == (2, 3)
    emb, none = conditioning_tensors([np.ones(4, np.float32)] * 2, [None, None])
    assert emb.dtype == torch.float32 and emb.shape == (2, 4) and none is None
    assert conditioning_tensors([None], [None]) == (None, None)
    with pytest.raises(ValueError, match="mixes"):
        conditioning_tensors([1, np.ones(4, np.float32)], [None, None])


async def collect(stream) -> list:
    return [chunk async for chunk in stream]


class Gated:
    """Wraps a backend: the first acoustic call waits for ``gate``; records each call's speakers."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.gate, self.entered = threading.Event(), threading.Event()
        self.speakers: list[list[int]] = []

    def warmup(self, speaker=None, style=None) -> None:
        self.inner.warmup(speaker, style)

    def acoustic(self, ids, lengths, controls, speaker=None, style=None):
        if not self.entered.is_set():
            self.entered.set()
            self.gate.wait(60)
        assert speaker is not None and style is not None and style.shape[0] == ids.shape[0]
        self.speakers.append(speaker.tolist())
        return self.inner.acoustic(ids, lengths, controls, speaker, style)

    def vocoder(self, mel):
        return self.inner.vocoder(mel)


def test_engine_batches_speakers_and_emotions_of_one_pack_together(ev):
    gated = Gated(ev.voice().backend)
    jobs = [
        SpeechJob(TEXTS[1], voice="emotivoice:1003", params=SynthesisParams.create(emotion="sad")),
        SpeechJob(TEXTS[0], voice="1005", params=SynthesisParams.create(instructions="用开心的语气说")),
        SpeechJob(TEXTS[3], voice="emotivoice", stream=True),
        SpeechJob(TEXTS[2], voice="emotivoice:1002", params=SynthesisParams.create(emotion="angry")),
    ]
    with Engine(ev, backend=lambda v: gated, max_wait_ms=50) as engine:

        async def run() -> list:
            first = engine.submit(jobs[0])
            while not gated.entered.is_set():
                await asyncio.sleep(0.005)
            rest = [engine.submit(j) for j in jobs[1:]]
            while engine.queued("acoustic") < 3:
                await asyncio.sleep(0.005)
            gated.gate.set()
            return await asyncio.gather(*(collect(s) for s in [first, *rest]))

        results = asyncio.run(run())
        with pytest.raises(NotFound, match="no speaker"):
            engine.submit(SpeechJob("你好。", voice="emotivoice:nobody"))
    # the two whole-file jobs queued behind the held one shared one call, each row with its own
    # speaker; the stream's first sentence ran in a call of its own (first-chunk work runs apart)
    assert any(sorted(s) == [2, 5] for s in gated.speakers), gated.speakers
    assert [0] in gated.speakers, gated.speakers
    for job, chunks in zip(jobs, results, strict=True):
        p = job.params
        ref = ev.synthesize(job.text, voice=job.voice, emotion=p.emotion, instructions=p.instructions)
        samples = np.concatenate([c.samples for c in chunks])
        assert len(samples) == len(ref.samples), job
        assert np.corrcoef(samples, ref.samples)[0, 1] >= 0.999, job


def test_cli_synth_speaks_a_speaker_with_a_prompt(home, ev, tmp_path):
    import soundfile as sf

    from voxserve.cli import main

    out = tmp_path / "ev.wav"
    main(
        ["synth", TEXTS[0], "-o", str(out), "--voice", "emotivoice:1003", "--instructions", "用开心的语气说"]
    )
    data, rate = sf.read(out)
    ref = ev.synthesize(TEXTS[0], voice="emotivoice:1003", instructions="用开心的语气说")
    assert rate == 16000 and len(data) == len(ref.samples)
